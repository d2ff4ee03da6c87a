"""``mlship quickstart``: write the churn example, run it, and show how to use the model."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mlship.cli.console import out
from mlship.cli.run import run_spec
from mlship.store.entities import model_of
from mlship.workspace import Workspace


def _program() -> str:
    """How the user can call this mlship: bare when it is first on PATH, else by its path."""
    script = Path(sys.executable).parent / "mlship"
    on_path = shutil.which("mlship")
    if on_path and script.exists() and Path(on_path).resolve() == script.resolve():
        return "mlship"
    if script.exists():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return f"{shlex.quote(sys.executable)} -m mlship"


def quickstart(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write the example project.")
    ] = Path("mlship-quickstart"),
    port: Annotated[int, typer.Option(help="Port used in the printed serve command.")] = 8000,
) -> None:
    """Build the churn example project, train and register a model, print the next commands."""
    import pandas as pd

    from mlship.examples.churn import write_project

    started = time.perf_counter()
    spec_path = write_project(directory)
    out.rule("mlship quickstart: customer churn")
    out.print(f"Wrote the example project to {directory}/ ({spec_path.name} and data/)")
    workspace = Workspace.open()
    try:
        result = run_spec(spec_path, workspace)
        home = workspace.settings.home_resolved
        bucket = workspace.settings.artifact_url
    finally:
        workspace.close()

    ref = f"{model_of(result.version).name}:{result.version.version}"
    new_rows = directory / "data" / "new_customers.csv"
    sample = pd.read_csv(new_rows, nrows=1).drop(columns=["customer_id"]).iloc[0]
    record = {k: (None if pd.isna(v) else v) for k, v in sample.to_dict().items()}
    body = json.dumps({"records": [record]}, default=str)
    mlship = _program()
    out.rule("Next")
    if bucket is None:
        out.print(f"Metadata and artifacts are in {home}")
    else:
        out.print(f"Metadata is in {home}, artifacts in {bucket}")
    out.print("Score a file:", style="bold")
    out.print(f"  {mlship} predict {ref} {new_rows} -o predictions.csv", soft_wrap=True)
    out.print("Serve it over HTTP:", style="bold")
    out.print(f"  {mlship} serve {ref} --port {port}", soft_wrap=True)
    out.print(
        f"  curl -s -X POST http://127.0.0.1:{port}/predict "
        f"-H 'content-type: application/json' -d {shlex.quote(body)}",
        soft_wrap=True,
        markup=False,
    )
    out.print("Look around:", style="bold")
    out.print(f"  {mlship} runs list   |  {mlship} runs show {result.run_id[:8]}", soft_wrap=True)
    out.print(f"  {mlship} models list |  {mlship} models show {ref}", soft_wrap=True)
    out.print(f"Quickstart finished in {time.perf_counter() - started:.1f} s")
