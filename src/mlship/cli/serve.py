"""``mlship serve``: an HTTP server for a model reference or a deployment file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlship.cli.console import out
from mlship.cli.options import TlsCert, TlsKey
from mlship.serve.drain import DEFAULT_SECONDS as DEFAULT_DRAIN
from mlship.serve.logs import json_logging

if TYPE_CHECKING:
    from mlship.security.tls import UvicornTls


def serve(
    target: Annotated[
        str,
        typer.Argument(
            help="MODEL, MODEL:VERSION, MODEL@STAGE (follows promotions), a deployment YAML, "
            "or a bundle directory written by `mlship package`."
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="Log level of the JSON logs.")] = "info",
    prediction_log: Annotated[
        bool, typer.Option(help="Keep the prediction log (Parquet, flushed on shutdown).")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(help="Worker processes sharing the port (and metrics, and the log).", min=1),
    ] = 1,
    max_body_mib: Annotated[
        float | None,
        typer.Option(
            help="Largest request body in MiB (413 above it); the deployment's "
            "limits.max_body_mib, 4 by default.",
            min=0.001,
        ),
    ] = None,
    max_records: Annotated[
        int | None,
        typer.Option(
            help="Most records in one request (413 above it); the deployment's "
            "limits.max_records, 10000 by default.",
            min=1,
        ),
    ] = None,
    drain_seconds: Annotated[
        float,
        typer.Option(
            help="On SIGTERM, report not ready and keep answering (closing each connection) "
            "this long before stopping, so a load balancer moves traffic away first; 0 stops "
            "at once.",
            min=0,
        ),
    ] = DEFAULT_DRAIN,
    write_ahead_log: Annotated[
        bool | None,
        typer.Option(
            "--write-ahead-log/--no-write-ahead-log",
            help="Put each request's prediction log rows on local disk (fsynced) before "
            "answering, so a killed server loses no answer; the deployment's "
            "log.write_ahead by default.",
            show_default=False,
        ),
    ] = None,
    wal_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the write-ahead logs (one subfolder per deployment); <home>/wal "
            "by default.",
            file_okay=False,
        ),
    ] = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    auth: Annotated[
        str | None,
        typer.Option(
            help="Ask callers for a bearer token: off, tokens (the workspace's API tokens) or "
            "keys (deployment keys); the deployment's auth.mode, off by default.",
        ),
    ] = None,
    auth_keys: Annotated[
        Path | None,
        typer.Option(
            help="File of deployment keys, `NAME ROLE SECRET` a line (MLSHIP_SERVE_KEYS adds "
            "more); the deployment's auth.keys_file.",
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            help="Requests a minute per token or key, in each worker (429 above it); the "
            "deployment's auth.per_minute, 0 (none) by default.",
            min=0,
        ),
    ] = None,
) -> None:
    """Serve /predict, MLflow's /invocations, the v2 inference protocol, /metrics and /docs;
    over HTTPS when given a certificate and its key."""
    import uvicorn

    from mlship.security.tls import uvicorn_tls
    from mlship.serve.factory import build, is_bundle_target

    tls = uvicorn_tls(tls_cert, tls_key)  # before any model loads: a bad file fails at once
    scheme = "https" if tls else "http"
    if auth is not None and auth not in ("off", "tokens", "keys"):
        raise typer.BadParameter(f"{auth!r}; expected off, tokens or keys", param_hint="--auth")
    guarding = (auth, auth_keys, rate_limit)
    if workers > 1:
        limits = (max_body_mib, max_records)
        ahead = (write_ahead_log, wal_dir)
        _serve_workers(
            target, host, port, log_level, prediction_log, workers, tls, limits, guarding,
            drain_seconds, ahead,
        )  # fmt: skip
        return
    json_logging(log_level)
    workspace = None
    if not is_bundle_target(target):  # a bundle needs no registry or database
        from mlship.workspace import Workspace

        workspace = Workspace.open()
    try:
        built = build(
            target,
            workspace,
            prediction_log=prediction_log,
            max_body_mib=max_body_mib,
            max_records=max_records,
            auth=guarding,
            drain_seconds=drain_seconds,
            write_ahead=write_ahead_log,
            wal_dir=wal_dir,
        )
        url = f"{scheme}://{host}:{port}"
        out.print(f"Serving {built.summary} on {url}  (docs: {url}/docs)")
        if built.log_place is not None:
            out.print(f"Prediction log: {built.log_place}")
        if built.wal_place is not None:
            out.print(f"Write-ahead log: {built.wal_place} (each answer on disk before it is sent)")
        if built.usage_place is not None:
            out.print(f"Usage ledger: {built.usage_place}")
        uvicorn.run(built.app, host=host, port=port, log_level="warning", access_log=False, **tls)
    finally:
        if workspace is not None:
            workspace.close()


def _serve_workers(
    target: str,
    host: str,
    port: int,
    log_level: str,
    prediction_log: bool,
    workers: int,
    tls: UvicornTls,
    limits: tuple[float | None, int | None],
    guarding: tuple[str | None, Path | None, int | None],
    drain_seconds: float,
    ahead: tuple[bool | None, Path | None],
) -> None:
    """Several uvicorn worker processes on one socket, sharing metrics and the log (not the
    rate limits: each worker counts its own)."""
    import os
    import tempfile

    import uvicorn

    from mlship.serve.auth import load_keys
    from mlship.serve.factory import (
        AUTH,
        AUTH_KEYS,
        DRAIN_SECONDS,
        MAX_BODY_MIB,
        MAX_RECORDS,
        PREDICTION_LOG,
        RATE_LIMIT,
        TARGET,
        WAL_DIR,
        WRITE_AHEAD,
        deployment_for,
        log_place,
        usage_place,
        wal_folder,
        with_auth,
    )
    from mlship.serve.supervisor import serve_workers

    # A bad deployment or keys file fails here, not in every worker.
    deployment = with_auth(deployment_for(target), *guarding)
    if deployment.auth.mode == "keys":
        load_keys(deployment.auth)
    mode, keys, rate = guarding
    with tempfile.TemporaryDirectory(prefix="mlship-metrics-") as metrics:
        os.environ.update(
            {
                TARGET: target,
                PREDICTION_LOG: "1" if prediction_log else "0",
                "MLSHIP_SERVE_LOG_LEVEL": log_level,
                "PROMETHEUS_MULTIPROC_DIR": metrics,
                MAX_BODY_MIB: "" if limits[0] is None else str(limits[0]),
                MAX_RECORDS: "" if limits[1] is None else str(limits[1]),
                DRAIN_SECONDS: str(drain_seconds),
                WRITE_AHEAD: "" if ahead[0] is None else "1" if ahead[0] else "0",
                WAL_DIR: "" if ahead[1] is None else str(ahead[1].resolve()),
                AUTH: mode or "",
                AUTH_KEYS: "" if keys is None else str(keys.resolve()),
                RATE_LIMIT: "" if rate is None else str(rate),
            }
        )
        scheme = "https" if tls else "http"
        guarded = "" if deployment.auth.mode == "off" else f"; auth {deployment.auth.mode}"
        out.print(f"Serving {target} with {workers} workers on {scheme}://{host}:{port}{guarded}")
        out.print(f"Usage ledger: {usage_place()}")
        place = log_place(deployment) if prediction_log else None
        if place is not None:
            out.print(f"Prediction log: {place}")
            write_ahead = deployment.log.write_ahead if ahead[0] is None else ahead[0]
            if write_ahead:  # a folder that cannot be written fails here, not in every worker
                from mlship.config import load_settings
                from mlship.monitor.wal import WriteAheadLog

                home = load_settings().home_resolved
                wal = WriteAheadLog(wal_folder(deployment, home, ahead[1]))
                wal.check()
                out.print(f"Write-ahead log: {wal.where} (each answer on disk before it is sent)")
        serve_workers(
            uvicorn.Config(
                "mlship.serve.factory:app_from_environment",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                **tls,
            )
        )
