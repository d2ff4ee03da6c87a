"""Building a server from a target (a model reference, a deployment file or a packaged bundle
directory), in this process or in each of several uvicorn worker processes.

Workers are fresh interpreters started by uvicorn: they learn what to serve from environment
variables the parent sets (``MLSHIP_SERVE_TARGET``, ``MLSHIP_SERVE_PREDICTION_LOG``), build the
same app, and share the listening socket, the prediction log (the workspace's log store: the
home, the artifacts' object storage or the tracking server, where replicas on other machines
write too; parts are named by host and process) and, through ``PROMETHEUS_MULTIPROC_DIR``, one
set of metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from mlship.errors import SpecError
from mlship.spec.deployment import Auth, Deployment, Limits, load_deployment

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.serve.auth import Check, Guard
    from mlship.workspace import Workspace

TARGET = "MLSHIP_SERVE_TARGET"
PREDICTION_LOG = "MLSHIP_SERVE_PREDICTION_LOG"
MAX_BODY_MIB = "MLSHIP_SERVE_MAX_BODY_MIB"
MAX_RECORDS = "MLSHIP_SERVE_MAX_RECORDS"
DRAIN_SECONDS = "MLSHIP_SERVE_DRAIN_SECONDS"
WRITE_AHEAD = "MLSHIP_SERVE_WRITE_AHEAD"
WAL_DIR = "MLSHIP_SERVE_WAL_DIR"
AUTH = "MLSHIP_SERVE_AUTH"
AUTH_KEYS = "MLSHIP_SERVE_AUTH_KEYS"
RATE_LIMIT = "MLSHIP_SERVE_RATE_LIMIT"


@dataclass(frozen=True)
class Built:
    app: FastAPI
    deployment: Deployment
    summary: str
    log_place: str | None
    """Where the prediction log is written (a folder, ``s3://...``, a server), None without one."""
    wal_place: str | None = None
    """The write-ahead folder, None without one."""
    usage_place: str | None = None
    """Where the process records what it uses (the usage ledger, ``serve/usage.py``)."""


def is_bundle_target(target: str) -> bool:
    """A directory is served as a packaged bundle (no registry or database needed)."""
    return Path(target).is_dir()


def deployment_for(target: str) -> Deployment:
    """A bundle's or a file's deployment, or the one-route deployment of a model reference."""
    path = Path(target)
    if is_bundle_target(target):
        from mlship.package.bundle import open_bundle

        return load_deployment(open_bundle(path).deployment_file)
    if target.endswith((".yaml", ".yml")) or path.is_file():
        return load_deployment(path)
    return Deployment.single(target)


def with_limits(
    deployment: Deployment, max_body_mib: float | None, max_records: int | None
) -> Deployment:
    """``deployment`` with the request limits given on the command line (they win)."""
    given = {"max_body_mib": max_body_mib, "max_records": max_records}
    changes = {name: value for name, value in given.items() if value is not None}
    if not changes:
        return deployment
    limits = Limits.model_validate({**deployment.limits.model_dump(), **changes})
    return deployment.model_copy(update={"limits": limits})


def with_auth(
    deployment: Deployment,
    mode: str | None,
    keys_file: Path | None = None,
    per_minute: int | None = None,
) -> Deployment:
    """``deployment`` with the authentication given on the command line (it wins)."""
    given = {"mode": mode, "keys_file": keys_file, "per_minute": per_minute}
    changes = {name: value for name, value in given.items() if value is not None}
    if not changes:
        return deployment
    auth = Auth.model_validate({**deployment.auth.model_dump(), **changes})
    return deployment.model_copy(update={"auth": auth})


def token_check(settings: Settings, workspace: Workspace | None) -> Check:
    """How the workspace's API tokens are checked: by the tracking server when the workspace is
    one (``MLSHIP_URL``), else in its metadata store (opened here for a bundle)."""
    from mlship.serve.auth import RemoteTokenCheck, TokenCheck

    if settings.url:
        verify: Any = True
        if settings.ca_bundle is not None:
            import ssl

            verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
        return RemoteTokenCheck(settings.url, verify=verify)
    if workspace is None:
        from mlship.workspace import Workspace

        workspace = Workspace.open(settings)  # open for the server's life, like a worker's
    from mlship.security.users import SqlUsers

    users = workspace.users
    assert isinstance(users, SqlUsers)
    return TokenCheck(users)


def guard_of(
    deployment: Deployment, settings: Settings, workspace: Workspace | None
) -> Guard | None:
    """The guard of ``deployment``'s ``auth`` (None when it is off)."""
    from mlship.serve.auth import guard_for

    return guard_for(deployment.auth, lambda: token_check(settings, workspace))


def build(
    target: str,
    workspace: Workspace | None,
    *,
    prediction_log: bool = True,
    max_body_mib: float | None = None,
    max_records: int | None = None,
    auth: tuple[str | None, Path | None, int | None] = (None, None, None),
    drain_seconds: float = 0.0,
    write_ahead: bool | None = None,
    wal_dir: Path | None = None,
) -> Built:
    """The app serving ``target``: a bundle directory, or a reference or deployment file in
    ``workspace`` (which must stay open while it serves); the limits and the authentication
    (mode, keys file, requests a minute) given override the deployment's. SIGTERM drains for
    ``drain_seconds`` (``serve/drain.py``). ``write_ahead`` (the deployment's
    ``log.write_ahead`` when None) keeps a write-ahead log of the prediction log in
    ``wal_dir``/<deployment> (``<home>/wal`` by default)."""
    from mlship.monitor.feedback import FeedbackStore, feedback_log
    from mlship.monitor.predlog import PredictionLog
    from mlship.monitor.wal import WriteAheadLog
    from mlship.serve.app import create_app
    from mlship.serve.drain import Drain
    from mlship.serve.live import BundleSource, LiveModels, ModelSource, RegistrySource
    from mlship.serve.usage import UsageMeter
    from mlship.store.logstore import PREDICTIONS, USAGE, LogStore, LogTarget

    source: ModelSource
    logs: LogStore
    if is_bundle_target(target):
        from mlship.config import load_settings
        from mlship.package.bundle import open_bundle
        from mlship.security.keyring import sealing as sealing_of
        from mlship.security.signing import signer

        bundle = open_bundle(Path(target))  # read once: its deployment and its model
        deployment = load_deployment(bundle.deployment_file)
        settings = load_settings()
        # The key that signed the bundle's model: a secret of the serving machine, never created.
        source = BundleSource(bundle, signer(settings, create=False))
        from mlship.store.log_home import log_store_for

        logs = log_store_for(settings)
        sealing = sealing_of(settings)
    elif workspace is None:
        raise ValueError(f"serving {target} needs an open workspace")
    else:
        deployment = deployment_for(target)
        source = RegistrySource(workspace)
        logs = workspace.logs
        sealing = workspace.sealing
        settings = workspace.settings
    deployment = with_auth(with_limits(deployment, max_body_mib, max_records), *auth)
    guard = guard_of(deployment, settings, workspace)  # before any model loads
    live = LiveModels(deployment, source, _share_of(deployment, target, workspace))
    log = None
    if prediction_log and deployment.log.enabled:
        log_target = (
            LogTarget.of(deployment.log.directory)
            if deployment.log.directory is not None
            else LogTarget(logs, f"{PREDICTIONS}/{deployment.name}")
        )
        ahead = deployment.log.write_ahead if write_ahead is None else write_ahead
        home = settings.home_resolved
        wal = WriteAheadLog(wal_folder(deployment, home, wal_dir)) if ahead else None
        if wal is not None:
            wal.check()
        log = PredictionLog(
            log_target,
            deployment.name,
            deployment.log.flush_rows,
            deployment.log.flush_seconds,
            sealing,
            write_ahead=wal,
        )
    usage = UsageMeter(
        logs,
        deployment.name,
        lambda: [served.usage_key for served in (*live.table.routes, *live.table.shadows)],
        sealing=sealing,
        flush_seconds=deployment.log.flush_seconds,
    )
    app = create_app(
        live,
        prediction_log=log,
        sticky_header=deployment.sticky_header,
        batching=deployment.batching,
        feedback=FeedbackStore(feedback_log(logs), sealing),
        limits=deployment.limits,
        strict=deployment.strict,
        guard=guard,
        drain=Drain(drain_seconds),
        usage=usage,
    )
    routes = ", ".join(f"{served.label} ({served.weight:g})" for served in live.table.routes)
    shadows = ", ".join(served.label for served in live.table.shadows)
    summary = f"deployment {deployment.name}: {routes}" + (
        f"; shadows {shadows}" if shadows else ""
    )
    if guard is not None:
        summary += f"; auth {guard.mode}"
    return Built(
        app,
        deployment,
        summary,
        log.where if log is not None else None,
        log.write_ahead.where if log is not None and log.write_ahead is not None else None,
        logs.location(USAGE),
    )


def _share_of(
    deployment: Deployment, target: str, workspace: Workspace | None
) -> Callable[[], float] | None:
    """What gives the candidate's share of a deployment with a rollout, read at every refresh."""
    spec = deployment.rollout
    if spec is None:
        return None
    if workspace is None or is_bundle_target(target):
        raise SpecError(
            f"{target}: a rollout routes between versions of a registry; a bundle holds one"
        )
    from mlship.serve.live import rollout_share

    rollouts = workspace.rollouts
    return lambda: rollout_share(rollouts, spec)


def wal_folder(deployment: Deployment, home: Path, wal_dir: Path | None) -> Path:
    """The write-ahead folder of the servers of ``deployment`` on this machine."""
    return (wal_dir or home / "wal") / deployment.name


def log_place(deployment: Deployment) -> str | None:
    """Where the workers serving ``deployment`` write its prediction log (None: not kept)."""
    from mlship.config import load_settings
    from mlship.store.logstore import PREDICTIONS, LogTarget

    if not deployment.log.enabled:
        return None
    if deployment.log.directory is not None:
        return str(deployment.log.directory)
    settings = load_settings()
    if settings.url:
        return f"{settings.url} ({PREDICTIONS}/{deployment.name})"
    from mlship.store.log_home import log_store_for

    return LogTarget(log_store_for(settings), f"{PREDICTIONS}/{deployment.name}").where


def usage_place() -> str:
    """Where the workers of a server record what they use (the usage ledger)."""
    from mlship.config import load_settings
    from mlship.store.log_home import log_store_for
    from mlship.store.logstore import USAGE

    settings = load_settings()
    if settings.url:
        return f"{settings.url} ({USAGE})"
    return log_store_for(settings).location(USAGE)


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker (``uvicorn ... --factory``)."""
    from mlship.serve.logs import json_logging

    json_logging(os.environ.get("MLSHIP_SERVE_LOG_LEVEL", "info"))
    target = os.environ[TARGET]
    workspace = None
    if not is_bundle_target(target):
        from mlship.workspace import Workspace

        workspace = Workspace.open()  # open for the worker's life; the process ends with it
    body, records = os.environ.get(MAX_BODY_MIB), os.environ.get(MAX_RECORDS)
    drain = os.environ.get(DRAIN_SECONDS)
    ahead, wal = os.environ.get(WRITE_AHEAD), os.environ.get(WAL_DIR)
    keys, rate = os.environ.get(AUTH_KEYS), os.environ.get(RATE_LIMIT)
    return build(
        target,
        workspace,
        prediction_log=os.environ.get(PREDICTION_LOG) != "0",
        max_body_mib=float(body) if body else None,
        max_records=int(records) if records else None,
        auth=(
            os.environ.get(AUTH) or None,
            Path(keys) if keys else None,
            int(rate) if rate else None,
        ),
        drain_seconds=float(drain) if drain else 0.0,
        write_ahead=None if not ahead else ahead == "1",
        wal_dir=Path(wal) if wal else None,
    ).app
