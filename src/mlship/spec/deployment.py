"""A deployment: which model versions a server answers with, in what shares, and who shadows them.

A deployment file names one or more *routes* — model references (``churn:3``, or a stage such as
``churn@production`` that follows the registry) with traffic weights — and optional *shadows*,
which receive a copy of every request and whose answers are logged, never returned. A request
that carries a key (the ``X-Request-Key`` header, or ``key`` in a native request) always lands
on the same route while the weights stay the same; other requests are spread at random.

``mlship serve MODEL`` is the one-route deployment of that model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlship.errors import SpecError
from mlship.store.accounts import Role

MiB = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Strict):
    model: str = Field(description="MODEL:VERSION, MODEL@STAGE, or MODEL for its newest version.")
    weight: float = Field(1.0, ge=0, description="Share of traffic, relative to the other routes.")


class PredictionLogSpec(_Strict):
    enabled: bool = True
    directory: Path | None = Field(
        None, description="Where Parquet parts go; <home>/predictions/<deployment> by default."
    )
    flush_rows: int = Field(1000, ge=1, description="Write a part when this many rows wait.")
    flush_seconds: float = Field(5.0, gt=0, description="Write what waits at least this often.")
    write_ahead: bool = Field(
        False,
        description="Put each request's rows on local disk (fsynced) before answering it, so "
        "a killed server loses no answered prediction (--write-ahead-log).",
    )


class Batching(_Strict):
    max_rows: int = Field(
        4096,
        ge=1,
        description="Most rows scored in one predict call (a pipeline's cost is mostly per call).",
    )
    max_wait_ms: float = Field(
        0.0, ge=0, description="Hold a batch open this long for more rows (0: never wait)."
    )


class Limits(_Strict):
    max_body_mib: float = Field(
        4.0, gt=0, description="Largest request body, in MiB; a larger one gets a 413."
    )
    max_records: int = Field(
        10_000, ge=1, description="Most records in one request; more get a 413."
    )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mib * MiB)


AuthMode = Literal["off", "tokens", "keys"]

KEYS_VARIABLE = "MLSHIP_SERVE_KEYS"
"""The environment variable that holds deployment keys (the same lines as a keys file)."""


class RouteRoles(_Strict):
    """The least role each kind of route needs; health, readiness and liveness need none."""

    predict: Role = Field(
        "viewer", description="/predict, /invocations, v2 infer and metadata, /docs."
    )
    feedback: Role = Field("scientist", description="/feedback.")
    metrics: Role = Field("viewer", description="/metrics.")
    admin: Role = Field("admin", description="Every other route.")


class Auth(_Strict):
    mode: AuthMode = Field(
        "off",
        description="off: anyone may call; tokens: the workspace's API tokens; keys: the "
        "deployment keys of keys_file and " + KEYS_VARIABLE + ".",
    )
    keys_file: Path | None = Field(
        None, description="File of deployment keys, one `NAME ROLE SECRET` a line."
    )
    per_minute: int = Field(
        0,
        ge=0,
        description="Requests a minute per token or key (bursts up to as many), in each worker "
        "process; 0: no limit.",
    )
    roles: RouteRoles = Field(default_factory=RouteRoles)

    @field_validator("mode", mode="before")
    @classmethod
    def _unquoted_off(cls, value: Any) -> Any:
        """YAML reads an unquoted ``off`` as false: ``mode: off`` means what it says."""
        return "off" if value is False else value


class Deployment(_Strict):
    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    routes: list[Route] = Field(min_length=1)
    shadows: list[str] = Field(default_factory=list)
    sticky_header: str = Field("X-Request-Key", description="Header whose value pins a route.")
    refresh_seconds: float = Field(
        2.0, gt=0, description="How often stage references are looked up again (hot swap)."
    )
    log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    batching: Batching = Field(default_factory=Batching)
    limits: Limits = Field(default_factory=Limits)
    strict: bool = Field(
        False,
        description="Refuse (422) records with numbers outside the training range or unseen "
        "categories, instead of answering them with warnings.",
    )
    auth: Auth = Field(default_factory=Auth)

    @model_validator(mode="after")
    def _some_weight(self) -> Deployment:
        if sum(route.weight for route in self.routes) <= 0:
            raise ValueError("at least one route needs a weight above 0")
        return self

    @classmethod
    def single(cls, ref: str, **options: Any) -> Deployment:
        """One model reference taking all the traffic."""
        name = ref.replace(":", "-").replace("@", "-")
        return cls(name=name, routes=[Route(model=ref)], **options)


def load_deployment(path: Path) -> Deployment:
    """Read a deployment file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"deployment file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read deployment file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with `routes` (and optionally `shadows`)")
    try:
        return Deployment.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            lines.append(f"{path}, field {where}: {message}")
        raise SpecError("\n".join(lines)) from None
