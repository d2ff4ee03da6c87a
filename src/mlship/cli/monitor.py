"""``mlship monitor``: drift, live data quality, performance with delayed labels, alerts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli import monitor_ab
from mlship.cli.console import err, out
from mlship.cli.options import OutputDir
from mlship.cli.render import fmt
from mlship.errors import MlshipError
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.monitor.alerts import Outcome
    from mlship.monitor.measure import Monitor, MonitorResult
    from mlship.monitor.rules import RuleSet
    from mlship.monitor.window import Window

app = typer.Typer(
    help="Watch served models: drift, data quality, performance, health, alerts.",
    no_args_is_help=True,
)

WindowOption = Annotated[
    str, typer.Option("--window", "-w", help="Live rows to judge: '500 rows' or a duration (1h).")
]


def parse_window(text: str) -> Window:
    from mlship.monitor.window import Window

    try:
        return Window.parse(text)
    except ValueError as exc:
        raise MlshipError(f"--window: {exc}") from None


def _drift_table(result: MonitorResult) -> Table:
    table = Table(title=f"Drift of {result.model} ({result.window.label}, {result.rows} rows)")
    for name in ("column", "kind", "method", "statistic", "threshold", "p-value", "drift"):
        table.add_column(name)
    columns = list(result.drift.columns) if result.drift else []
    if result.prediction_drift is not None:
        columns.append(result.prediction_drift)
    for column in columns:
        table.add_row(
            column.column,
            column.kind,
            column.method,
            fmt(column.statistic),
            fmt(column.threshold),
            "-" if column.p_value is None else fmt(column.p_value),
            "[bold red]drift[/]" if column.drifted else "no",
        )
    return table


def _quality_table(result: MonitorResult) -> Table:
    table = Table(title="Live data quality against training")
    for name in ("column", "missing", "training missing", "out of range", "unseen", "issues"):
        table.add_column(name)
    for column in result.quality.columns:
        table.add_row(
            column.column,
            f"{column.missing:.1%}",
            f"{column.training_missing:.1%}",
            "-" if column.out_of_range is None else f"{column.out_of_range:.1%}",
            "-" if column.unseen is None else f"{column.unseen:.1%}",
            "; ".join(column.issues) or "-",
        )
    return table


def _performance_table(result: MonitorResult) -> Table:
    performance = result.performance
    names = sorted(performance.baseline) or sorted(
        {name for v in performance.versions for name in v.metrics}
    )
    table = Table(title="Performance on labelled traffic (drop: positive is worse than test)")
    for name in ("version", "role", "predictions", "labelled", *names):
        table.add_column(name)
    for entry in performance.versions:
        cells = []
        for name in names:
            value = entry.metrics.get(name)
            drop = entry.degradation.get(name)
            cells.append(
                "-" if value is None else fmt(value) + ("" if drop is None else f" ({drop:+.3f})")
            )
        table.add_row(
            str(entry.version), entry.role, str(entry.predictions), str(entry.labelled), *cells
        )
    return table


DriftRulesOption = Annotated[
    Path | None,
    typer.Option("--rules", "-r", help="Rules file whose `drift:` section sets per-column "
                 "methods, thresholds and the dataset share."),
]  # fmt: skip
ReferenceOption = Annotated[
    str | None,
    typer.Option("--reference", help="Dataset to compare with (hash prefix or PIPELINE~N; "
                 "default: the judged version's training data)."),
]  # fmt: skip


def _monitor(workspace: Workspace, rules_path: Path | None, reference: str | None) -> Monitor:
    from mlship.monitor.measure import Monitor
    from mlship.monitor.rules import load_rules

    monitor = Monitor(workspace, reference=reference)
    if rules_path is not None:
        _judge_drift_as(monitor, load_rules(rules_path))
    return monitor


def _judge_drift_as(monitor: Monitor, rules: RuleSet) -> None:
    """Apply the rules file's ``drift:`` section (per-column methods, thresholds, share)."""
    monitor.methods, monitor.thresholds = rules.drift.methods, rules.drift.thresholds
    monitor.drift_share = rules.drift.share


@app.command("status")
def status(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    window: WindowOption = "1h",
    rules_path: DriftRulesOption = None,
    reference: ReferenceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Drift, quality, performance and health of a model's live traffic in one window."""
    workspace = Workspace.open()
    try:
        monitor = _monitor(workspace, rules_path, reference)
        result = monitor.measure(model, parse_window(window))
        _record_usage(workspace, monitor)
    finally:
        workspace.close()
    if as_json:
        out.print_json(json.dumps(result.to_dict(), default=str))
        return
    out.print(
        f"{result.model}: version {result.version} judged on {result.rows} rows "
        f"({result.requests} requests, {result.window.label}) against dataset "
        f"{result.reference.dataset_hash[:12]} ({result.reference.rows} rows)"
    )
    if result.rows == 0:
        out.print(f"No traffic for {result.model} in the {result.window.label}.")
        return
    if result.drift is None:
        out.print("Drift: too few rows in this window to judge")
    else:
        out.print(_drift_table(result))
        verdict = "drifted" if result.drift.drifted else "not drifted"
        out.print(
            f"Dataset {verdict}: {len(result.drift.drifted_columns)} of "
            f"{len(result.drift.columns)} columns ({result.drift.share:.0%}; threshold "
            f"{result.drift.threshold:.0%})"
        )
    out.print(_quality_table(result))
    out.print(_performance_table(result))


@app.command("feedback")
def feedback(
    path: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON Lines: request_id, label[, row].")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Check labels against this model (default: the model "
            "that answered each request, from the prediction logs).",
        ),
    ] = None,
) -> None:
    """Store true labels of earlier answers, for performance monitoring."""
    from mlship.monitor.feedback import FeedbackStore, feedback_log
    from mlship.monitor.labels_file import read_labels_file
    from mlship.train.signature import Signature

    workspace = Workspace.open()
    try:

        def signature_of(name: str) -> Signature:
            return Signature.from_dict(workspace.catalogue.get_version(name).signature)

        sealing = workspace.sealing
        grouped = read_labels_file(path, workspace.logs, signature_of, model, sealing)
        store = FeedbackStore(feedback_log(workspace.logs), sealing)
        labels = [label for items in grouped.values() for label in items]
        stored = store.append(labels, f"file:{path.name}")
    finally:
        workspace.close()
    per_model = ", ".join(f"{name} {len(items)}" for name, items in sorted(grouped.items()))
    out.print(f"Stored {stored} labels from {path} ({per_model}) in {store.where}")


app.command("ab")(monitor_ab.ab)


@app.command("compact")
def compact(
    small_rows: Annotated[
        int, typer.Option("--small-rows", help="Merge parts with fewer rows than this.", min=1)
    ] = 20_000,
    target_rows: Annotated[
        int, typer.Option("--target-rows", help="Rows a merged part holds at most.", min=2)
    ] = 200_000,
) -> None:
    """Merge the small parts of the prediction logs, labels and usage ledger into big ones (run
    one at a time)."""
    from mlship.monitor.compaction import compact as compact_logs
    from mlship.monitor.predlog import replay_write_ahead

    workspace = Workspace.open()
    try:
        where = workspace.logs.where
        wal = workspace.settings.home_resolved / "wal"
        replayed = replay_write_ahead(wal, workspace.logs, workspace.sealing)
        if replayed:
            out.print(f"Logged {replayed} rows that stopped servers left in {wal}")
        done = compact_logs(
            workspace.logs, workspace.sealing, small_rows=small_rows, target_rows=target_rows
        )
    finally:
        workspace.close()
    table = Table(title=f"Compaction of the logs in {where}")
    for name in ("log", "parts merged", "into", "rows", "leftovers removed"):
        table.add_column(name)
    for item in done:
        table.add_row(
            item.log, str(item.merged), str(item.written), str(item.rows), str(item.leftovers)
        )
    out.print(table)
    merged = sum(item.merged for item in done)
    written = sum(item.written for item in done)
    out.print(f"Merged {merged} parts into {written} in {len(done)} logs")


RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", "-r", help="Alert rules (YAML); optional when budgets in the "
                 "settings have alert = true."),
]  # fmt: skip
ModelsOption = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="Model to watch (repeatable; default: the models the "
                 "rules name, else every registered model)."),
]  # fmt: skip
SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="Pipeline spec that `retrain` actions run (default: the spec "
                 "recorded on the model's newest run)."),
]  # fmt: skip


def _record_usage(workspace: Workspace, monitor: Monitor) -> None:
    """Write what the pass used to the usage ledger; a ledger that cannot be written is warned
    about, the pass's results stand."""
    from mlship.costs.measured import record_usage

    used, monitor.used = monitor.used, []
    unrecorded = record_usage(workspace.logs, used, workspace.sealing)
    if unrecorded is not None:
        err.print(f"[yellow]warning:[/] {escape(unrecorded)}; this pass's usage is not recorded")


def _load_rules(path: Path | None) -> RuleSet:
    from mlship.monitor.rules import RuleSet, load_rules

    return RuleSet() if path is None else load_rules(path)


def _with_rules(rules: RuleSet, path: Path | None, workspace: Workspace) -> RuleSet:
    """The file's rules and those of the budgets that alert (``[[budgets]]``, ``alert = true``)."""
    from mlship.monitor.cost_rules import with_budgets

    rules = with_budgets(rules, workspace.settings.budgets)
    if not rules.rules:
        raise MlshipError(
            "no alert rules to evaluate: give --rules FILE, or set alert = true on a budget"
            if path is None
            else f"{path} has no `rules:` to evaluate (and no budget has alert = true)"
        )
    return rules


def _models(workspace: Workspace, rules: RuleSet, given: list[str] | None) -> list[str]:
    if given:
        return list(dict.fromkeys(given))
    named = [r.model for r in rules.rules if r.model is not None and r.stream is None]
    others = [r for r in rules.rules if r.team is not None or r.stream is not None]
    if len(named) + len(others) == len(rules.rules):
        return list(dict.fromkeys(named))
    return [model.name for model in workspace.catalogue.list_models()]


def _outcome_table(outcomes: list[Outcome], title: str) -> Table:
    table = Table(title=title)
    for name in ("model", "rule", "metric", "value", "condition", "severity", "status", "detail"):
        table.add_column(name)
    styles = {"fired": "bold red", "suppressed": "yellow", "ok": "green", "no data": "dim",
              "not evaluated": "magenta"}  # fmt: skip
    for outcome in outcomes:
        detail = "; ".join(str(d) for d in outcome.deliveries) or outcome.note
        table.add_row(
            outcome.model,
            outcome.rule.name,
            outcome.metric,
            "-" if outcome.value is None else fmt(outcome.value),
            str(outcome.rule.condition),
            outcome.rule.severity,
            f"[{styles[outcome.status]}]{outcome.status}[/]",
            detail or "-",
        )
    return table


def _one_pass(
    workspace: Workspace, monitor: Monitor, rules: RuleSet, models: list[str], spec: Path | None
) -> list[Outcome]:
    from mlship.cli.cost_items import workspace_costs
    from mlship.costs.budgets import horizon
    from mlship.costs.items import CostItem
    from mlship.monitor.alerts import evaluate
    from mlship.monitor.cost_rules import cost_measure
    from mlship.monitor.retrain import retrainer
    from mlship.monitor.stream_rules import StreamMeasure
    from mlship.store.clock import utcnow

    now = utcnow()

    def measure(model: str, window: Window) -> dict[str, float | None]:
        return monitor.measure(model, window).metrics()

    def costs(seconds: float) -> list[CostItem]:
        return workspace_costs(workspace, horizon(now, seconds), now)[0]

    _judge_drift_as(monitor, rules)
    return evaluate(
        rules,
        models,
        measure,
        workspace.alert_history,
        now=now,
        retrain=retrainer(workspace, spec=spec),
        measure_cost=cost_measure(costs, workspace.settings.budgets, now),
        measure_stream=StreamMeasure(workspace.logs, now, workspace.sealing),
    )


@app.command("run")
def run_rules(
    rules_path: RulesOption = None,
    model: ModelsOption = None,
    spec: SpecOption = None,
) -> None:
    """Evaluate the alert rules once (for cron): deliver what holds, respecting cool-downs."""
    from mlship.monitor.measure import Monitor

    loaded = _load_rules(rules_path)
    workspace = Workspace.open()
    try:
        rules = _with_rules(loaded, rules_path, workspace)
        models = _models(workspace, rules, model)
        monitor = Monitor(workspace)
        outcomes = _one_pass(workspace, monitor, rules, models, spec)
        _record_usage(workspace, monitor)
    finally:
        workspace.close()
    title = "Budget alerts" if rules_path is None else f"Alert rules of {rules_path.name}"
    out.print(_outcome_table(outcomes, title))
    fired = sum(o.status == "fired" for o in outcomes)
    summary = f"{fired} fired, {sum(o.status == 'suppressed' for o in outcomes)} suppressed"
    unmeasured = sum(o.status == "not evaluated" for o in outcomes)
    out.print(summary + (f", {unmeasured} not evaluated" if unmeasured else ""))


@app.command("watch")
def watch(
    rules_path: RulesOption = None,
    model: ModelsOption = None,
    spec: SpecOption = None,
    every: Annotated[str, typer.Option("--every", help="Time between passes (30s, 5m).")] = "1m",
    passes: Annotated[
        int, typer.Option("--passes", help="Stop after this many passes (0: until interrupted).")
    ] = 0,
) -> None:
    """Evaluate the alert rules in a loop; references stay loaded between passes."""
    from mlship.monitor.measure import Monitor
    from mlship.monitor.window import parse_duration

    try:
        interval = parse_duration(every)
    except ValueError as exc:
        raise MlshipError(f"--every: {exc}") from None
    loaded = _load_rules(rules_path)
    workspace = Workspace.open()
    monitor = Monitor(workspace)
    done = 0
    try:
        rules = _with_rules(loaded, rules_path, workspace)
        while True:
            started = time.monotonic()
            models = _models(workspace, rules, model)
            outcomes = _one_pass(workspace, monitor, rules, models, spec)
            _record_usage(workspace, monitor)
            done += 1
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            out.print(_outcome_table(outcomes, f"Pass {done} at {stamp} UTC"))
            if passes and done >= passes:
                break
            time.sleep(max(interval - (time.monotonic() - started), 0.0))
    finally:
        workspace.close()


@app.command("alerts")
def alerts(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many, newest first.")] = 50,
) -> None:
    """The alert history: rules that held, delivered or suppressed by their cool-down."""
    from mlship.monitor.history import deliveries_text

    workspace = Workspace.open()
    try:
        rows = workspace.alert_history.list(model=model, limit=limit)
    finally:
        workspace.close()
    table = Table(title="Alerts")
    for name in ("at (UTC)", "model", "rule", "metric", "value", "condition", "severity",
                 "status", "deliveries"):  # fmt: skip
        table.add_column(name)
    for row in rows:
        deliveries = deliveries_text(row.deliveries)
        table.add_row(
            row.at.strftime("%Y-%m-%d %H:%M:%S"),
            row.model,
            row.rule,
            row.metric,
            fmt(row.value),
            row.condition,
            row.severity,
            row.status,
            deliveries or "-",
        )
    out.print(table)


@app.command("report")
def report(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    window: WindowOption = "1d",
    output: OutputDir = None,
    rules_path: DriftRulesOption = None,
    reference: ReferenceOption = None,
) -> None:
    """Write the monitoring report (HTML and JSON): drift, quality, performance, health, alerts."""
    from mlship.monitor.history import alert_record
    from mlship.monitor.report import write_monitor_report

    workspace = Workspace.open()
    try:
        monitor = _monitor(workspace, rules_path, reference)
        result = monitor.measure(model, parse_window(window))
        _record_usage(workspace, monitor)
        history = workspace.alert_history.list(model=model, limit=200)
        alerts = [alert_record(row) for row in history]
        directory = output or workspace.settings.home_resolved / "reports"
        json_path, html_path = write_monitor_report(
            result, directory, health=result.health, alerts=alerts
        )
    finally:
        workspace.close()
    out.print(f"Monitoring report: {html_path}")
    out.print(f"Figures as JSON: {json_path}")
