"""The ``mlship`` entry point: registers the command groups and turns errors into messages."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from mlship import __version__
from mlship.cli import (
    airflow,
    backup,
    ci,
    cost,
    data,
    db,
    deploy,
    image,
    keys,
    models,
    monitor,
    rollout,
    runs,
    stream,
    users,
)
from mlship.cli.audit import audit
from mlship.cli.compress import compress
from mlship.cli.console import err, out
from mlship.cli.gate import gate
from mlship.cli.gc import gc
from mlship.cli.init import init
from mlship.cli.loadtest import loadtest
from mlship.cli.package import package
from mlship.cli.predict import predict
from mlship.cli.quickstart import quickstart
from mlship.cli.run import run
from mlship.cli.serve import serve
from mlship.cli.server import server
from mlship.cli.size import size
from mlship.cli.stream_land import land as stream_land
from mlship.cli.ui import ui
from mlship.errors import MlshipError
from mlship.store.failures import anywhere, is_storage_failure

app = typer.Typer(
    name="mlship",
    help="Take a model through its whole life: data in, validated, trained, registered, served.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(init)
app.command()(run)
app.command()(predict)
app.command()(serve)
app.command()(package)
app.command()(quickstart)
app.command()(server)
app.command()(ui)
app.command()(audit)
app.command()(backup.restore)
app.command()(loadtest)
app.command()(gc)
app.command()(gate)
app.command()(size)
app.command()(compress)
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
app.add_typer(monitor.app, name="monitor")
app.add_typer(rollout.app, name="rollout")
app.add_typer(users.users_app, name="users")
app.add_typer(users.tokens_app, name="tokens")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(backup.app, name="backup")
app.add_typer(deploy.app, name="deploy")
app.add_typer(cost.app, name="cost")
app.add_typer(image.app, name="image")
app.add_typer(ci.app, name="ci")
app.add_typer(airflow.app, name="airflow")
stream.app.command("land")(stream_land)
app.add_typer(stream.app, name="stream")


@app.command()
def version() -> None:
    """Print mlship's version."""
    out.print(__version__)


def main() -> None:
    try:
        app()
    except MlshipError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except OSError as exc:  # a disk that refused a write no store claimed: say which and why
        if not is_storage_failure(exc):
            raise
        err.print(f"[bold red]error:[/] {escape(str(anywhere(exc)))}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
