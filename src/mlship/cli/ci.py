"""``mlship ci``: pipeline files that take every commit from data to a production request."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mlship import __version__
from mlship.ci.files import SYSTEMS, target, write_pipeline
from mlship.ci.stages import CiError, Plan
from mlship.cli.console import out
from mlship.package.image import SUITE, SUITE_PYTHON

app = typer.Typer(help="CI pipelines: validate, run, gate, package, build and request promotion.")


def _spec_in(root: Path, spec: Path) -> str:
    """The spec's path from the repository root, as the pipeline's checkout sees it."""
    if not spec.is_file():
        raise CiError(f"spec {spec} not found; pass --spec with the pipeline spec to run")
    relative = os.path.relpath(spec.resolve(), root.resolve())
    if relative.startswith(".."):
        raise CiError(
            f"spec {spec} is outside {root}; the pipeline runs from a checkout of {root}, "
            "so the spec must be inside it"
        )
    return Path(relative).as_posix()


@app.command("init")
def init(
    system: Annotated[str, typer.Argument(help=f"The CI system: {', '.join(SYSTEMS)}.")],
    spec: Annotated[
        Path, typer.Option(help="The pipeline spec the pipeline runs (inside --out).")
    ] = Path("pipeline.yaml"),
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="The repository's root; the file goes where the system looks for it."
        ),
    ] = Path("."),
    install: Annotated[
        str | None,
        typer.Option(
            help="What pip installs into the cached virtualenv; mlship at this version if unset."
        ),
    ] = None,
    python: Annotated[
        str,
        typer.Option(
            help="Python version of the pipeline's jobs (GitHub, GitLab): the image's base's, "
            "since the bundle's wheels must match it."
        ),
    ] = SUITE_PYTHON,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write SYSTEM's pipeline: validate data, run, gate, package, build image, request promotion.

    The secrets MLSHIP_URL, MLSHIP_TOKEN and MLSHIP_SIGNING_KEY are read by name, never written.
    """
    from mlship.spec import load_spec

    target(system, out_dir)  # an unknown system is refused before the spec is read
    if python != SUITE_PYTHON:
        raise CiError(
            f"--python {python}: the image stage builds from Debian {SUITE}, whose Python is "
            f"{SUITE_PYTHON}, and the bundle's wheels must be for the image's Python; "
            f"pass --python {SUITE_PYTHON}"
        )
    where = _spec_in(out_dir, spec)
    name = load_spec(spec).spec.name
    plan = Plan(
        spec=where,
        model=name,
        python=python,
        install=install if install is not None else f"mlship=={__version__}",
    )
    path = write_pipeline(system, plan, out_dir, force=force)
    out.print(f"Wrote {path}: {name} from {where}")
    out.print("Stages: validate data -> run -> gate -> package -> build image -> request promotion")
    out.print("Set the secrets MLSHIP_URL, MLSHIP_TOKEN and MLSHIP_SIGNING_KEY in the CI system")
