"""``mlship predict``: score a CSV or Parquet file with a registered model."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from mlship.cli.console import out
from mlship.cli.refs import resolve_version
from mlship.data.sources import read_file
from mlship.errors import MlshipError
from mlship.registry.model_io import LoadedModel, load_model
from mlship.store.artifacts import atomic_write
from mlship.workspace import Workspace


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise MlshipError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def score_frame(model: LoadedModel, raw: pd.DataFrame, origin: str, csv: bool) -> pd.DataFrame:
    """Predictions for ``raw``, with its id columns in front and class probabilities after."""
    frame = model.prepare(raw, origin, csv_lines=csv)
    predictions, proba = model.predict(frame)
    result = pd.DataFrame(
        {name: raw[name].to_numpy() for name in model.signature.id_columns if name in raw}
    )
    result["prediction"] = predictions
    if proba is not None and model.signature.classes:
        for index, label in enumerate(model.signature.classes):
            result[f"proba_{label}"] = proba[:, index]
    return result


def predict(
    ref: Annotated[str, typer.Argument(help="MODEL or MODEL:VERSION (newest by default).")],
    input_path: Annotated[Path, typer.Argument(help="CSV or Parquet file of model inputs.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write predictions.")],
) -> None:
    """Score a file; rows that do not match the model's signature stop it with their row numbers."""
    in_format, out_format = _format_of(input_path), _format_of(output)
    workspace = Workspace.open()
    try:
        model = load_model(resolve_version(workspace, ref), workspace.artifacts)
    finally:
        workspace.close()
    started = time.perf_counter()
    raw = read_file(input_path, in_format)
    result = score_frame(model, raw, str(input_path), in_format == "csv")
    buffer = io.BytesIO()
    if out_format == "csv":
        result.to_csv(buffer, index=False)
    else:
        result.to_parquet(buffer, index=False)
    atomic_write(output, [buffer.getvalue()])
    elapsed = time.perf_counter() - started
    out.print(f"Scored {len(result)} rows with {model.ref} in {elapsed:.2f} s -> {output}")
