"""A deployment: which model versions a server answers with, in what shares, and who shadows them.

A deployment file names one or more *routes* — model references (``churn:3``, or a stage such as
``churn@production`` that follows the registry) with traffic weights — and optional *shadows*,
which receive a copy of every request and whose answers are logged, never returned. A request
that carries a key (the ``X-Request-Key`` header, or ``key`` in a native request) always lands
on the same route while the weights stay the same; other requests are spread at random.

A deployment may instead carry a *rollout* (:class:`Rollout`): the routes are then the model's
production version and one candidate, and the candidate's share is the rollout's current step,
kept in the metadata store and moved by ``mlship rollout step`` (see :mod:`mlship.monitor.rollout`).

``mlship serve MODEL`` is the one-route deployment of that model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlship.durations import seconds_in
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


class RolloutChecks(_Strict):
    """Health the candidate must keep at every step, or the rollout is rolled back."""

    max_error_rate: float | None = Field(
        None, ge=0, le=1, description="Most refused or failed requests, as a share (0.02: 2 %)."
    )
    max_p99_ms: float | None = Field(
        None, gt=0, description="Slowest 99th percentile latency allowed, in milliseconds."
    )
    min_requests: int = Field(
        20,
        ge=1,
        description="Requests the candidate must have answered in a step before its error rate "
        "and latency are judged (one failure in three requests is no rate).",
    )


class Rollout(_Strict):
    """A progressive rollout of ``candidate`` against the model's production version."""

    model: str = Field(min_length=1, description="Registered model name (no version).")
    candidate: int = Field(ge=1, description="The version rolled out.")
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        min_length=1,
        description="Percentages of traffic sent to the candidate, rising, the last one 100.",
    )
    hold: str = Field(
        "30m", description="How long the checks must hold at a step before the next one."
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Level of the always-valid test.")
    effect: float | None = Field(
        None,
        gt=0,
        description="Difference worth finding, in the metric's units (default as monitor ab).",
    )
    checks: RolloutChecks = Field(default_factory=RolloutChecks)

    @field_validator("model")
    @classmethod
    def _name_only(cls, model: str) -> str:
        if any(mark in model for mark in ":@") or model.strip() != model:
            raise ValueError(
                f"{model!r}: expected the model's name alone (such as churn); the version rolled "
                "out is `candidate`, the one it replaces is the model's production version"
            )
        return model

    @field_validator("steps")
    @classmethod
    def _rising_to_100(cls, steps: list[float]) -> list[float]:
        for index, step in enumerate(steps):
            if not 0 < step <= 100:
                raise ValueError(f"step {index + 1} is {step:g}: a percentage above 0, at most 100")
            if index and step <= steps[index - 1]:
                raise ValueError(
                    f"step {index + 1} ({step:g}) does not rise above step {index} "
                    f"({steps[index - 1]:g}): steps must rise"
                )
        if steps[-1] != 100:
            raise ValueError(
                f"the last step is {steps[-1]:g}: it must be 100, so the candidate takes all the "
                "traffic before it is approved for production"
            )
        return steps

    @field_validator("hold", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        seconds = seconds_in(value, ("s", "m", "h", "d")) if isinstance(value, str) else None
        if seconds is None or seconds <= 0:
            raise ValueError(
                f"{value!r} is not a duration: expected a whole number and a unit above 0, "
                "such as 45s, 30m, 1h or 2d"
            )
        return value.strip()

    @property
    def hold_seconds(self) -> float:
        return seconds_in(self.hold, ("s", "m", "h", "d")) or 0.0

    @property
    def candidate_ref(self) -> str:
        return f"{self.model}:{self.candidate}"

    def routes(self, weight: float) -> list[Route]:
        """The production version and the candidate, ``weight`` percent to the candidate."""
        return [
            Route(model=f"{self.model}@production", weight=100.0 - weight),
            Route(model=self.candidate_ref, weight=weight),
        ]


class Deployment(_Strict):
    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    routes: list[Route] = Field(default_factory=list)
    rollout: Rollout | None = Field(
        None,
        description="Route between production and a candidate by the steps of a progressive "
        "rollout instead of fixed routes.",
    )
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
        if self.rollout is not None:
            if self.routes:
                raise ValueError(
                    "routes: leave them out with rollout:, which routes between "
                    f"{self.rollout.model}@production and {self.rollout.candidate_ref} itself"
                )
            # Before the rollout starts (and after it is rolled back) production takes it all.
            return self.model_copy(update={"routes": self.rollout.routes(0.0)})
        if not self.routes:
            raise ValueError("routes: expected at least one route (or a rollout: block)")
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
            elif error["type"] == "value_error":
                message = message.removeprefix("Value error, ")
            lines.append(f"{path}, field {where}: {message}")
        raise SpecError("\n".join(lines)) from None
