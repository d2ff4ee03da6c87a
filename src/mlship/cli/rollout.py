"""``mlship rollout``: progressive rollouts of a candidate version, judged one step at a time.

``step`` judges once and moves if due, so it is safe to run from cron or a pipeline as often as
wanted; ``watch`` is the same in a loop. The decision and its figures are in
:mod:`mlship.monitor.rollout`; the state is in the metadata store, where serving reads it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlship.cli.console import out
from mlship.errors import MlshipError
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.monitor.rollout import Judgement
    from mlship.store.entities import Rollout

app = typer.Typer(
    help="Progressive rollouts: a candidate's share of traffic grows while it holds its checks.",
    no_args_is_help=True,
)

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        hidden=True,
        help="Judge as at this ISO 8601 time (replaying a rollout's decisions).",
    ),
]


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MlshipError(f"--now: expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _where(rollout: Rollout) -> str:
    steps = len(rollout.steps)
    return f"step {rollout.step + 1} of {steps} ({rollout.weight:g}% to the candidate)"


def _headline(rollout: Rollout) -> str:
    from mlship.monitor.window import format_duration

    ref = f"{rollout.model}:{rollout.candidate}"
    since = rollout.since.strftime("%Y-%m-%d %H:%M:%S")
    steps = "/".join(f"{step:g}" for step in rollout.steps)
    return (
        f"Rollout of {ref} against {rollout.model}:{rollout.control} "
        f"(deployment {rollout.deployment}): {rollout.status}, {_where(rollout)} "
        f"since {since} UTC; "
        f"steps {steps}%, hold {format_duration(rollout.hold_seconds)}, alpha {rollout.alpha:g}"
    )


def _figures(judgement: Judgement) -> str | None:
    """The step's figures on one line (None before any traffic was read)."""
    parts = []
    comparison, result = judgement.comparison, judgement.result
    if comparison is not None and result is not None:
        test = comparison.test
        if test.looks and test.difference is not None and test.interval is not None:
            low, high = test.interval
            parts.append(
                f"{result.metric} {test.difference:+.4f}, {1 - test.alpha:.0%} always-valid "
                f"interval [{low:+.4f}, {high:+.4f}], sequential p = {test.p_value:.4g} "
                f"({test.n_b} vs {test.n_a} labelled)"
            )
        else:
            parts.append(f"{test.n_b} vs {test.n_a} labelled records so far")
    if judgement.candidate is not None:
        health = judgement.candidate.health
        requests, rate = health.get("requests"), health.get("error_rate")
        p99 = health.get("latency_p99_ms")
        parts.append(
            f"{requests or 0:.0f} requests"
            + ("" if rate is None else f", error rate {rate:.2%}")
            + ("" if p99 is None else f", p99 {p99:.1f} ms")
        )
    return "; ".join(parts) or None


def _report(judgement: Judgement) -> None:
    rollout = judgement.rollout
    ref = f"{rollout.model}:{rollout.candidate}"
    figures = _figures(judgement)
    if figures is not None:
        out.print(escape(f"This step: {figures}"))
    move = judgement.move
    if move is None:
        if judgement.waiting is not None:
            out.print(escape(f"No move: {judgement.waiting}"))
        elif not rollout.active:
            out.print(escape(f"{ref}'s rollout is {rollout.status}: " + "; ".join(rollout.reasons)))
        return
    reasons = "; ".join(move.reasons)
    state = judgement.state
    sentences = {
        "advanced": f"Advanced to {_where(state)}: {reasons}",
        "holding": f"Holding at 100%: {reasons}",
        "rolled back": f"Rolled back {ref} to 0%: {reasons}",
        "done": f"Done: {reasons}",
    }
    out.print(escape(sentences[move.action]))


def _exit_code(rollout: Rollout) -> None:
    """Exit 1 once the rollout is rolled back, so a pipeline that steps it stops there."""
    if rollout.status == "rolled back":
        raise typer.Exit(1)


@app.command("start")
def start(
    deployment_file: Annotated[
        Path, typer.Argument(help="Deployment file with a rollout: block.", show_default=False)
    ],
    now: NowOption = None,
) -> None:
    """Start the rollout a deployment file declares, at its first step (again: no change)."""
    from mlship.monitor.rollout import plan_of, start_rollout
    from mlship.spec.deployment import load_deployment

    plan = plan_of(load_deployment(deployment_file), str(deployment_file))
    workspace = Workspace.open()
    try:
        rollout, started = start_rollout(workspace, plan, _now(now))
    finally:
        workspace.close()
    if started:
        out.print(escape(f"Started: {_headline(rollout)}"))
    else:
        out.print(escape(f"Already started (nothing changed): {_headline(rollout)}"))


@app.command("status")
def status(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
    now: NowOption = None,
) -> None:
    """Where the model's rollout stands and what its current step shows (moves nothing)."""
    from mlship.monitor.rollout import current_rollout, judge

    workspace = Workspace.open()
    try:
        judgement = judge(workspace, current_rollout(workspace, model), _now(now))
    finally:
        workspace.close()
    if as_json:
        out.print_json(json.dumps(judgement.to_dict()))
        return
    out.print(escape(_headline(judgement.rollout)))
    if judgement.rollout.reasons:
        out.print(escape("Last move: " + "; ".join(judgement.rollout.reasons)))
    figures = _figures(judgement)
    if figures is not None:
        out.print(escape(f"This step: {figures}"))
    if judgement.move is not None:
        out.print(escape(f"Due: {judgement.move.action} (`mlship rollout step {model}` moves it)"))
    elif judgement.waiting is not None:
        out.print(escape(f"Next: {judgement.waiting}"))


@app.command("step")
def step(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the look as JSON.")] = False,
    now: NowOption = None,
) -> None:
    """Judge the current step once and move if due: on, back to 0%, or done. Exit 1 once
    rolled back."""
    from mlship.monitor.rollout import step_rollout

    workspace = Workspace.open()
    try:
        judgement = step_rollout(workspace, model, _now(now))
    finally:
        workspace.close()
    if as_json:
        out.print_json(json.dumps(judgement.to_dict()))
    else:
        out.print(escape(_headline(judgement.state)))
        _report(judgement)
    _exit_code(judgement.state)


@app.command("watch")
def watch(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    every: Annotated[str, typer.Option("--every", help="Time between looks (30s, 1m).")] = "1m",
    looks: Annotated[
        int, typer.Option("--looks", help="Stop after this many looks (0: until it ends).")
    ] = 0,
) -> None:
    """Step the rollout in a loop until it is rolled back or done, one line a look."""
    from mlship.monitor.rollout import step_rollout
    from mlship.monitor.window import parse_duration

    try:
        interval = parse_duration(every)
    except ValueError as exc:
        raise MlshipError(f"--every: {exc}") from None
    if interval <= 0:
        raise MlshipError("--every: expected a duration above 0, such as 30s or 1m")
    workspace = Workspace.open()
    done = 0
    try:
        while True:
            started = time.monotonic()
            judgement = step_rollout(workspace, model)
            done += 1
            stamp = judgement.at.strftime("%H:%M:%S")
            out.print(escape(f"[{stamp} UTC] {judgement.state.status}, {_where(judgement.state)}"))
            _report(judgement)
            if not judgement.state.active or (looks and done >= looks):
                break
            time.sleep(max(interval - (time.monotonic() - started), 0.0))
    finally:
        workspace.close()
    _exit_code(judgement.state)
