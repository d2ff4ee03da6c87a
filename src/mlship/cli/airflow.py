"""``mlship airflow export``: a pipeline spec as an Airflow DAG file.

The DAG records this command's mlship executable, workspace and working directory, so the
scheduler's workers run the same mlship against the same workspace a person would from here.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlship.cli.console import out

app = typer.Typer(help="Schedule pipelines with Apache Airflow.", no_args_is_help=True)


def _this_mlship() -> Path | None:
    """The mlship command of the environment running this one (beside its Python, not resolved
    through symlinks, which would leave a virtualenv), else the first on the PATH."""
    beside = Path(sys.executable).absolute().parent / "mlship"
    if beside.is_file():
        return beside
    found = shutil.which("mlship")
    return Path(found).absolute() if found else None


@app.command("export")
def export(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The DAGs folder to write the DAG file into.")
    ],
    mlship: Annotated[
        Path | None,
        typer.Option(
            "--mlship",
            help="The mlship command the workers run (absolute path); this one's by default.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file of that name that is another DAG.")
    ] = False,
) -> None:
    """Write SPEC's DAG: validate, train, gate (when the spec has one) and package, scheduled
    by the spec's `orchestration:` block. Re-export to apply a changed spec."""
    from mlship.config import load_settings
    from mlship.orchestrate.airflow_dag import ExportError, plan_for, write_dag
    from mlship.spec import load_spec

    loaded = load_spec(spec)
    executable = mlship.absolute() if mlship is not None else _this_mlship()
    if executable is None:
        raise ExportError("no mlship command found beside Python or on the PATH; pass --mlship")
    home = load_settings().home_resolved
    plan = plan_for(loaded, executable, home, Path.cwd())
    path = write_dag(plan, output, force=force)
    settings = plan.orchestration
    out.print(f"Wrote {path}: DAG {plan.dag_id}, tasks {' -> '.join(plan.task_ids)}")
    out.print(
        f"Schedule {settings.schedule or 'none (triggered only)'}, {settings.retries} retries "
        f"{settings.retry_delay} apart; workspace {plan.home}"
    )
