"""Labels from a file (``mlship monitor feedback labels.csv``): read, matched to models, checked.

The file has a ``request_id`` column, a ``label`` column and optionally a ``row`` column (the
record's index within its request, 0 when absent); CSV, Parquet or JSON Lines by extension. Each
request id is looked up in the prediction logs to find the model that answered it, so that its
label is checked against that model's classes. A label whose request id is in no log (yet: a
server writes its log every few seconds) is refused, naming the file row, unless the model is
given. Nothing is stored unless every row is good.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from mlship.errors import DataError
from mlship.monitor.feedback import Label, check_labels
from mlship.monitor.traffic import log_sources, scan_log
from mlship.store.logstore import LogStore
from mlship.store.parts import PLAIN, Sealing
from mlship.train.signature import Signature

REQUIRED = ("request_id", "label")


def _read(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path)
        return pl.read_csv(path, infer_schema=False)  # every column as text: labels stay exact
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix.lstrip('.') or 'CSV'}: {exc}") from None


def _row_place(path: Path, index: int, csv: bool) -> str:
    # Rows count from 1 like a spreadsheet; CSV files also get the line (after the header).
    return f"{path.name}, row {index + 1}" + (f" (line {index + 2})" if csv else "")


def read_labels_file(
    path: Path,
    logs: Path | LogStore,
    signature_of: Callable[[str], Signature],
    model: str | None = None,
    sealing: Sealing = PLAIN,
) -> dict[str, list[Label]]:
    """The file's labels, checked, grouped by model name (see the module docstring)."""
    frame = _read(path)
    missing = [name for name in REQUIRED if name not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected request_id, label and "
            f"optionally row (found: {', '.join(frame.columns) or 'none'})"
        )
    if frame.is_empty():
        raise DataError(f"{path}: no rows")
    csv = path.suffix.lower() not in (".parquet", ".jsonl", ".ndjson")
    request_ids = frame.get_column("request_id").cast(pl.String)
    rows = _rows(frame, path, csv)
    owners = _owners(logs, request_ids, sealing) if model is None else {}
    grouped: dict[str, list[tuple[int, Label]]] = {}
    unknown = []
    for index, (request_id, row, label) in enumerate(
        zip(request_ids.to_list(), rows, frame.get_column("label").to_list(), strict=True)
    ):
        owner = model or owners.get(request_id or "")
        if owner is None:
            place = _row_place(path, index, csv)
            unknown.append(f"{place}: request id {request_id!r} is in no prediction log")
            continue
        grouped.setdefault(owner, []).append((index, Label(request_id or "", row, label)))
    if unknown:
        shown = unknown[:20] + ([f"... and {len(unknown) - 20} more"] if len(unknown) > 20 else [])
        raise DataError(
            "\n".join([*shown, "(give --model to store labels of answers not logged yet)"])
        )
    checked: dict[str, list[Label]] = {}
    problems = []
    for owner, items in grouped.items():
        places = [_row_place(path, index, csv) for index, _ in items]
        labels = [item for _, item in items]
        try:
            checked[owner] = check_labels(labels, signature_of(owner), places, ", column ")
        except DataError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError("\n".join(problems))
    return checked


def _rows(frame: pl.DataFrame, path: Path, csv: bool) -> list[int]:
    if "row" not in frame.columns:
        return [0] * frame.height
    values = frame.get_column("row").cast(pl.String).to_list()
    rows = []
    for index, value in enumerate(values):
        text = (value or "0").strip()
        if not text.isdigit():
            raise DataError(
                f"{_row_place(path, index, csv)}, column row: expected a record index (0 or more), "
                f"got {value!r}"
            )
        rows.append(int(text))
    return rows


def _owners(logs: Path | LogStore, request_ids: pl.Series, sealing: Sealing) -> dict[str, str]:
    """Which model answered each request id, from every prediction log."""
    parts = log_sources(logs, sealing)
    if not parts:
        return {}
    wanted = request_ids.drop_nulls().unique()
    found = (
        scan_log(parts, sealing)
        .select("request_id", "model")
        .filter(pl.col("request_id").is_in(wanted.implode()))
        .unique("request_id")
        .collect()
    )
    return dict(zip(found.get_column("request_id"), found.get_column("model"), strict=True))
