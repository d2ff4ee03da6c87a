"""``mlship predict``: score a CSV, JSON, JSON lines or Parquet file with a registered model.

The file is read by ingest's own readers (same formats, encodings, line numbers and messages), and
its values are read as the model's training data declared them (null tokens, number and date
formats are part of the model's signature).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mlship.cli.console import err, out
from mlship.errors import MlshipError
from mlship.registry.refs import resolve_version
from mlship.serve.batch_job import batch_log, record_batch, score_prepared, write_answers
from mlship.train.cost import measure
from mlship.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from mlship.monitor.predlog import PredictionLog
    from mlship.train.model_io import LoadedModel


_INPUT_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def _format_of(path: Path, inputs: bool = False) -> str:
    suffix = path.suffix.lower()
    fmt = _INPUT_FORMATS.get(suffix)
    if fmt in ("csv", "parquet") or (inputs and fmt is not None):
        return fmt
    kinds = ".csv, .parquet, .json or .jsonl" if inputs else ".csv or .parquet"
    raise MlshipError(f"{path}: unsupported file type {suffix!r}; use {kinds}")


def score_frame(
    model: LoadedModel,
    raw: pd.DataFrame,
    origin: str,
    csv: bool,
    *,
    lines: Sequence[int] | None = None,
    chunk_rows: int = 50_000,
    log: PredictionLog | None = None,
    batch_id: str = "",
) -> pd.DataFrame:
    """Predictions for ``raw``, with its id columns in front and class probabilities after.

    Every row is checked against the signature first (a bad row stops the job before anything is
    scored); then rows are scored ``chunk_rows`` at a time with a progress bar, and each chunk's
    answers go to the prediction ``log`` when one is given, with the inputs as the model took them
    (typed by its signature), as a server logs them.
    """
    frame = model.prepare(raw, origin, csv_lines=csv and lines is None, lines=lines)
    with Progress(
        TextColumn("Scoring {task.fields[ref]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
    ) as progress:
        task = progress.add_task("score", total=len(frame), ref=model.ref)
        return score_prepared(
            model, raw, frame, chunk_rows, log, batch_id,
            advance=lambda rows: progress.advance(task, rows),
        )  # fmt: skip


def predict(
    ref: Annotated[
        str, typer.Argument(help="MODEL, MODEL:VERSION or MODEL@STAGE (newest by default).")
    ],
    input_path: Annotated[
        Path, typer.Argument(help="CSV, JSON, JSON lines or Parquet file of model inputs.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write predictions.")],
    encoding: Annotated[
        str, typer.Option(help="Text encoding of a CSV or JSON input, e.g. latin-1.")
    ] = "utf-8",
    delimiter: Annotated[str, typer.Option(help="CSV field separator.")] = ",",
    chunk_rows: Annotated[
        int | None,
        typer.Option(help="Rows scored at a time (50000 here, 1000 a request with --url).", min=1),
    ] = None,
    prediction_log: Annotated[
        bool, typer.Option(help="Append the answers to the prediction log.")
    ] = True,
    url: Annotated[
        str | None,
        typer.Option(
            help="Score through the model server at this URL (`mlship serve`) instead of "
            "loading the model here; the server logs the predictions."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token for --url: a deployment key or an API token (MLSHIP_TOKEN).",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            help="Where to score: `local` (this process), `ray` (Ray Data actors; the input "
            "may also be a directory of Parquet files) or `spark` (Spark executors; "
            "MLSHIP_SPARK_MASTER names the cluster, local[*] by default)."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --executor ray: a cluster (ray://host:port); RAY_ADDRESS or a "
            "local Ray otherwise.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score a file; rows that do not match the model's signature stop it with their row numbers."""
    if executor not in ("local", "ray", "spark"):
        raise typer.BadParameter(f"{executor!r}: use local, ray or spark", param_hint="--executor")
    if executor == "ray" or ray_address is not None:  # distributed: mlship.serve.batch_ray
        _predict_on_ray(executor, ref, input_path, output, url, token, delimiter, encoding,
                        chunk_rows, prediction_log, ray_address)  # fmt: skip
        return
    in_format, out_format = _format_of(input_path, inputs=True), _format_of(output)
    if url is not None:
        options = (delimiter, encoding, chunk_rows or 1000)
        _predict_at(url, token, ref, input_path, in_format, output, out_format, options)
        return
    if token is not None:
        raise typer.BadParameter("only with --url (the model is loaded here otherwise)")
    if executor == "spark":
        _predict_spark(ref, input_path, in_format, output, out_format, delimiter)
        return
    chunk_rows = chunk_rows or 50_000
    workspace = Workspace.open()  # open while the log is written: it may be the server's
    try:
        began = datetime.now(UTC)
        with measure() as used:
            version = resolve_version(workspace, ref)
            model = workspace.load_model(version)
            started = time.perf_counter()
            with batch_log(workspace, prediction_log) as (log, batch_id):
                scored = _score_here(
                    model, (input_path, in_format, delimiter, encoding), (output, out_format),
                    chunk_rows, log, batch_id, int(workspace.settings.stream_above),
                )  # fmt: skip
        unrecorded = record_batch(workspace, used.usage, began, version, scored)
    finally:
        workspace.close()
    elapsed = time.perf_counter() - started
    out.print(f"Scored {scored} rows with {model.ref} in {elapsed:.2f} s -> {output}")
    _report(unrecorded, log, scored, batch_id)


def _score_here(
    model: LoadedModel,
    source: tuple[Path, str, str, str],
    target: tuple[Path, str],
    chunk_rows: int,
    log: PredictionLog | None,
    batch_id: str,
    stream_above: int,
) -> int:
    """Score the file ``source`` (path, format, delimiter, encoding) in this process into
    ``target`` (path, format): in batches when it is larger than ``stream_above`` bytes, else
    read whole; the number of rows scored."""
    from mlship.data.sources import read_rows
    from mlship.serve.batch_stream import score_file, streams

    input_path, in_format, delimiter, encoding = source
    output, out_format = target
    if streams(input_path, in_format, stream_above):
        return score_file(
            model, input_path, in_format, (delimiter, encoding), output, out_format,
            chunk_rows=chunk_rows, log=log, batch_id=batch_id,
        )  # fmt: skip
    data = read_rows(input_path, in_format, delimiter, encoding, "--encoding")
    raw = data.frame.to_pandas()
    lines = data.places().to_list() if data.unit == "line" else None
    result = score_frame(
        model, raw, str(input_path), in_format == "csv", lines=lines,
        chunk_rows=chunk_rows, log=log, batch_id=batch_id,
    )  # fmt: skip
    write_answers(result, output, out_format)
    return len(result)


def _report(unrecorded: str | None, log: PredictionLog | None, rows: int, batch_id: str) -> None:
    """Warn of usage that was not recorded and of answers the prediction log lost."""
    if unrecorded is not None:
        err.print(f"[yellow]warning:[/] {escape(unrecorded)}; this run's usage is not recorded")
    if log is not None and log.failure is not None:
        err.print(
            f"[yellow]warning:[/] {escape(log.failure)}; {log.waiting + log.dropped} of the "
            f"{rows} rows scored are not in the prediction log"
        )
    elif log is not None:
        out.print(f"Prediction log: {log.where} ({batch_id})")


def _predict_spark(
    ref: str, input_path: Path, in_format: str, output: Path, out_format: str, delimiter: str
) -> None:
    """Score ``input_path`` on Spark executors with the verified bytes of the model version."""
    from mlship.serve.batch_spark import payload_of, score_with_spark

    if in_format not in ("csv", "parquet"):
        raise typer.BadParameter("--executor spark scores CSV or Parquet files")
    workspace = Workspace.open()
    try:
        version = resolve_version(workspace, ref)
        model = workspace.load_model(version)  # signature and checksum verified here
        data = workspace.artifacts.get_bytes(version.artifact_sha256)
        payload = payload_of(model, version.artifact_sha256, version.signature, data)
    finally:
        workspace.close()
    started = time.perf_counter()
    result = score_with_spark(model, payload, input_path, in_format, delimiter)
    write_answers(result, output, out_format)
    elapsed = time.perf_counter() - started
    out.print(f"Scored {len(result)} rows with {model.ref} on Spark in {elapsed:.2f} s -> {output}")


def _predict_on_ray(
    executor: str,
    ref: str, input_path: Path, output: Path, url: str | None, token: str | None,
    delimiter: str, encoding: str, chunk_rows: int | None, prediction_log: bool,
    address: str | None,
) -> None:  # fmt: skip
    from mlship.serve.batch_ray import predict_on_ray

    if executor != "ray":
        raise typer.BadParameter("only with --executor ray", param_hint="--ray-address")
    if url is not None or token is not None:
        raise typer.BadParameter("not with --executor ray", param_hint="--url/--token")
    in_format = "parquet" if input_path.is_dir() else _format_of(input_path, inputs=True)
    scored = predict_on_ray(
        ref, input_path, in_format, output, _format_of(output), address=address,
        delimiter=delimiter, encoding=encoding, chunk_rows=chunk_rows or 50_000,
        prediction_log=prediction_log,
    )  # fmt: skip
    out.print(
        f"Scored {scored.rows} rows with {scored.ref} on Ray ({scored.actors} actor(s)) in "
        f"{scored.seconds:.2f} s -> {output}"
    )
    _report(scored.unrecorded, scored.log, scored.rows, scored.batch_id)


def _predict_at(
    url: str,
    token: str | None,
    ref: str,
    input_path: Path,
    in_format: str,
    output: Path,
    out_format: str,
    options: tuple[str, str, int],
) -> None:
    """Score ``input_path`` through the model server at ``url``, ``chunk`` records a request;
    a refused record is named by its line (or row) in the file."""
    import pandas as pd

    from mlship.config import load_settings
    from mlship.data.sources import read_rows
    from mlship.serve.client import ModelServerClient, answer_columns

    delimiter, encoding, chunk = options
    settings = load_settings()
    secret = token or (settings.token.get_secret_value() if settings.token else None)
    verify: Any = True
    if settings.ca_bundle is not None:
        import ssl

        verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
    started = time.perf_counter()
    data = read_rows(input_path, in_format, delimiter, encoding, "--encoding")
    records = data.frame.to_dicts()
    places = data.places().to_list()
    unit = data.unit
    answers: list[dict[str, Any]] = []
    name = ref.split("@", maxsplit=1)[0].split(":", maxsplit=1)[0]
    with ModelServerClient(url, secret, verify=verify) as client:
        fields = client.fields()  # the file's other columns (a label, notes) are not sent
        if fields is not None:
            records = [{k: v for k, v in record.items() if k in fields} for record in records]
        for start in range(0, len(records), chunk):

            def where(index: int, start: int = start) -> str:
                return f"{input_path} {unit} {places[start + index]}"

            answer = client.predict(records[start : start + chunk], where)
            if answer.get("model") != name:
                raise MlshipError(
                    f"{url} serves {answer.get('model')}:{answer.get('version')}, not {ref}"
                )
            answers.append(answer)
    result = pd.DataFrame(answer_columns(answers))
    write_answers(result, output, out_format)
    elapsed = time.perf_counter() - started
    served = sorted({f"{a['model']}:{a['version']}" for a in answers})
    out.print(
        f"Scored {len(result)} rows with {', '.join(served) or ref} at {url} in {elapsed:.2f} s "
        f"-> {output}"
    )
