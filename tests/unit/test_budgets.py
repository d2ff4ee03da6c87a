"""Budgets: declared in mlship.toml with mistakes named by field, judged on the month's
forecast, and the cost metrics and rules the monitor evaluates for models and teams."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.budget_settings import Budget
from mlship.cli.cost_items import workspace_costs
from mlship.config import CONFIG_FILE, load_settings
from mlship.costs.budgets import (
    budget_statuses,
    cost_metrics,
    horizon,
    of_subject,
    status_of,
)
from mlship.costs.items import CostItem
from mlship.costs.ledger import UsageRecord, write_usage
from mlship.errors import ConfigError
from mlship.monitor.alerts import evaluate
from mlship.monitor.cost_rules import budget_rules, cost_measure, with_budgets
from mlship.monitor.history import SqlAlertHistory
from mlship.monitor.rules import Condition, RulesError, parse_rules
from mlship.monitor.window import Window
from mlship.workspace import Workspace

JUNE = datetime(2026, 6, 1, tzinfo=UTC)
NOW = JUNE + timedelta(days=10)  # June 11th, 00:00: 20 days of June left


def item(cost: float, start: datetime, hours: float = 24.0, **kw: Any) -> CostItem:
    return CostItem(
        kind=kw.pop("kind", "serving"),
        started_at=start,
        ended_at=start + timedelta(hours=hours),
        cost=cost,
        source="s",
        **kw,
    )


def daily(cost: float, days: int, **kw: Any) -> list[CostItem]:
    """``cost`` a day on each of the ``days`` days before NOW."""
    return [item(cost, NOW - timedelta(days=d + 1), **kw) for d in range(days)]


# -- arithmetic -----------------------------------------------------------------------------------


def test_a_budget_is_judged_on_the_forecast_of_its_team_only() -> None:
    items = daily(2.0, 10, team="growth", model="churn") + daily(50.0, 10, team="risk")
    # growth: 20 so far, 2 a day for the 20 days left: 60 by the end of June.
    status = status_of(Budget(team="growth", monthly=100.0), items, NOW)
    assert status.month_to_date == pytest.approx(20.0)
    assert status.rate_per_day == pytest.approx(2.0)
    assert status.forecast == pytest.approx(60.0)
    assert status.share == pytest.approx(0.6)
    assert status.state == "ok"


@pytest.mark.parametrize(
    ("monthly", "state"),
    [(76.0, "ok"), (75.0, "warning"), (60.01, "warning"), (60.0, "over"), (10.0, "over")],
)
def test_the_state_turns_at_warn_at_and_at_the_whole_budget(monthly: float, state: str) -> None:
    items = daily(2.0, 10, model="churn")  # forecast 60
    (status,) = budget_statuses([Budget(model="churn", monthly=monthly, warn_at=0.8)], items, NOW)
    assert status.state == state


def test_a_budget_already_spent_is_over_even_without_recent_spending() -> None:
    items = [item(30.0, JUNE, hours=1, model="churn")]  # once, nine days before NOW
    status = status_of(Budget(model="churn", monthly=25.0), items, NOW)
    assert status.month_to_date == pytest.approx(30.0)
    assert status.forecast >= status.month_to_date
    assert status.state == "over"


def test_a_budget_with_nothing_spent_is_ok_at_zero() -> None:
    status = status_of(Budget(team="nobody", monthly=5.0), daily(2.0, 3, team="a"), NOW)
    assert (status.month_to_date, status.forecast, status.share, status.state) == (
        0.0,
        0.0,
        0.0,
        "ok",
    )


def test_cost_metrics_of_a_model_and_of_a_team() -> None:
    served = daily(2.0, 10, model="churn", team="growth", predictions=1000)
    batch = daily(1.0, 10, model="churn", team="growth", kind="batch", predictions=5000)
    other = daily(4.0, 10, model="fraud", team="growth", predictions=1000)
    items = served + batch + other
    budgets = [Budget(model="churn", monthly=180.0), Budget(team="growth", monthly=10.0)]

    churn = cost_metrics(items, budgets, NOW, model="churn", seconds=2 * 86400)
    assert churn["cost.month_to_date"] == pytest.approx(30.0)
    assert churn["cost.forecast"] == pytest.approx(90.0)
    assert churn["cost.budget_share"] == pytest.approx(0.5)
    # Serving only, over the last two days: 4.0 for 2,000 predictions (batch work left out).
    assert churn["cost.per_1000_predictions"] == pytest.approx(2.0)

    growth = cost_metrics(items, budgets, NOW, team="growth", seconds=86400)
    assert growth["cost.forecast"] == pytest.approx(7.0 * 30)
    assert growth["cost.budget_share"] == pytest.approx(21.0)
    assert growth["cost.per_1000_predictions"] == pytest.approx(3.0)

    fraud = cost_metrics(items, budgets, NOW, model="fraud", seconds=None)
    assert fraud["cost.budget_share"] is None  # no budget of its own
    assert fraud["cost.per_1000_predictions"] is None  # no duration to look over
    idle = cost_metrics(items, budgets, NOW, model="churn", seconds=60)
    assert idle["cost.per_1000_predictions"] is not None
    quiet = cost_metrics(daily(1.0, 3, model="x"), [], NOW, model="x", seconds=3600)
    assert quiet["cost.per_1000_predictions"] is None  # work, but no predictions


def test_a_subject_is_a_model_or_a_team() -> None:
    with pytest.raises(ValueError, match="a model or a team"):
        of_subject([], model="a", team="b")
    with pytest.raises(ValueError, match="a model or a team"):
        of_subject([])


def test_the_horizon_reaches_back_to_the_month_the_rate_and_the_longest_window() -> None:
    assert horizon(NOW) == JUNE  # the 1st is before NOW - 7 days
    early = JUNE + timedelta(days=3)
    assert horizon(early) == early - timedelta(days=7)  # the forecast's rate reaches into May
    assert horizon(NOW, 30 * 86400) == NOW - timedelta(days=30)


def test_the_workspace_costs_read_the_ledger_from_the_horizon_on(workspace: Workspace) -> None:
    now = datetime.now(UTC)
    record = UsageRecord(
        kind="serving",
        started_at=now - timedelta(hours=2),
        ended_at=now - timedelta(hours=1),
        model="churn",
        version=1,
        cpu_seconds=3600.0,
        predictions=400,
    )
    write_usage(workspace.logs, [record], workspace.sealing)

    def read(since: datetime) -> list[CostItem]:
        # The ledger's own part is stored too, and billed as storage: only the work here.
        items, _ = workspace_costs(workspace, since, since + timedelta(days=40))
        return [item for item in items if item.kind != "storage"]

    (served,) = read(horizon(now))
    assert (served.kind, served.model, served.version, served.predictions) == (
        "serving",
        "churn",
        1,
        400,
    )
    assert served.cost == pytest.approx(record.cost(workspace.settings.prices))
    assert read(now + timedelta(days=1)) == []  # nothing written before the horizon is read


# -- rules ----------------------------------------------------------------------------------------

PATH = Path("/project/rules.yaml")


def test_budgets_that_alert_become_a_warning_and_a_critical_rule() -> None:
    budgets = [
        Budget(team="growth & co", monthly=250.0, warn_at=0.75, alert=True),
        Budget(model="churn", monthly=10.0),
    ]
    warning, critical = budget_rules(budgets, webhook=True)
    assert warning.name == "budget.team.growth-co.warning"
    assert (warning.team, warning.model) == ("growth & co", None)
    assert warning.metric == "cost.budget_share"
    assert warning.condition == Condition(">=", 0.75)
    assert (warning.severity, critical.severity) == ("warning", "critical")
    assert critical.condition == Condition(">=", 1.0)
    assert warning.actions == ("log", "webhook")
    assert warning.cooldown == timedelta(days=1)
    assert "team growth & co reaches 75% of its budget of 250" in str(warning.description)
    assert budget_rules(budgets, webhook=False)[0].actions == ("log",)

    plain = parse_rules("rules: []\n", PATH)
    added = with_budgets(plain, budgets)
    assert [r.name for r in added.rules] == [warning.name, critical.name]
    assert added.teams == ["growth & co"]
    assert added.for_model("churn") == []  # team rules are evaluated once, for the team
    clash = parse_rules(
        "rules:\n  - {name: budget.team.growth-co.critical, metric: cost.forecast, team: x, "
        'condition: "> 1"}\n',
        PATH,
    )
    with pytest.raises(RulesError, match=r"called 'budget.team.growth-co.critical'"):
        with_budgets(clash, budgets)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{name: a, metric: cost.spend, condition: '> 1'}",
            "line 2, field rules[0].metric: unknown cost metric 'cost.spend': expected one of "
            "cost.forecast, cost.month_to_date, cost.per_1000_predictions, cost.budget_share",
        ),
        (
            "{name: a, team: growth, metric: drift.share, condition: '> 1'}",
            "field rules[0].team: only cost.* metrics are measured for a team; drift.share "
            "needs a model",
        ),
        (
            "{name: a, team: growth, model: churn, metric: cost.forecast, condition: '> 1'}",
            "field rules[0].team: a rule names a model or a team, not both",
        ),
        (
            "{name: a, model: churn, metric: cost.per_1000_predictions, window: 500 rows, "
            "condition: '> 1'}",
            "field rules[0].window: cost.per_1000_predictions is measured over a duration "
            "(1h, 7d), not over rows",
        ),
        (
            "{name: a, team: '', metric: cost.forecast, condition: '> 1'}",
            "field rules[0].team",
        ),
        (
            "{name: a, team: growth, metric: cost.forecast, condition: '> 1', "
            "actions: [log, retrain]}",
            "field rules[0].actions[1]: action retrain needs a model to train; a team's rule "
            "cannot retrain",
        ),
    ],
)
def test_cost_rule_mistakes_are_named_by_line_and_field(rule: str, message: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(f"rules:\n  - {rule}\n", PATH)
    assert str(PATH) in str(info.value)
    assert message in str(info.value)


_FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["cost.forecast", "cost.budget_share", "cost.nope", "drift.share"]),
    st.sampled_from(["1h", "7d", "500 rows", "0", "> 1", ">= 0.8"]),
    st.lists(st.sampled_from(["log", "webhook", "page"]), max_size=3),
)
_RULE_KEYS = ["name", "model", "team", "metric", "window", "condition", "cooldown", "actions"]


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(_RULE_KEYS), _FIELD_VALUES, max_size=8),
        min_size=1,
        max_size=3,
    )
)
def test_any_cost_rule_is_read_or_refused_with_its_file_line_and_field(
    rules: list[dict[str, Any]],
) -> None:
    text = json.dumps({"rules": rules})  # JSON is YAML
    error: str | None
    try:
        parsed = parse_rules(text, PATH)
    except RulesError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert error.startswith(f"{PATH}, line "), error
        assert "field " in error
        return
    for rule in parsed.rules:  # what is read is consistent
        assert rule.team is None or (rule.is_cost and rule.model is None)
        assert not rule.is_cost or rule.window.seconds is not None


def test_the_longest_names_make_rules_and_alerts_that_fit_the_history(
    history: SqlAlertHistory,
) -> None:
    team, model = "t" * 190, "m" * 200
    budgets = [
        Budget(team=team, monthly=1.0, alert=True),
        Budget(model=model, monthly=1.0, alert=True),
    ]
    rules = with_budgets(parse_rules("rules: []\n", PATH), budgets)
    assert all(len(rule.name) <= 200 for rule in rules.rules)
    assert len({rule.name for rule in rules.rules}) == 4
    items = daily(5.0, 3, team=team, model=model)
    outcomes = evaluate(
        rules,
        [model],
        lambda m, w: {},
        history,
        now=NOW,
        measure_cost=cost_measure(lambda seconds: items, budgets, NOW),
    )
    assert [o.status for o in outcomes] == ["fired"] * 4
    assert {a.model for a in history.list()} == {model, f"team:{team}"}
    with pytest.raises(ValueError, match="expected a name of 1 to 190 characters"):
        Budget(team="t" * 191, monthly=1.0)
    with pytest.raises(RulesError, match=r"rules\[0\]\.team"):
        parse_rules(
            f"rules:\n  - {{name: a, team: {'t' * 191}, metric: cost.forecast, "
            'condition: "> 1"}\n',
            PATH,
        )


# -- evaluation -----------------------------------------------------------------------------------


@pytest.fixture
def history(workspace: Workspace) -> SqlAlertHistory:
    return SqlAlertHistory(workspace.metadata)


def test_team_and_model_cost_rules_fire_once_per_cooldown_without_measuring_traffic(
    history: SqlAlertHistory,
) -> None:
    rules = parse_rules(
        """\
rules:
  - {name: growth-spend, team: growth, metric: cost.forecast, condition: "> 80", window: 1d}
  - name: dear-answers
    metric: cost.per_1000_predictions
    condition: "> 1.5"
    window: 2d
    cooldown: 1d
""",
        PATH,
    )
    budgets = [Budget(team="growth", monthly=100.0, warn_at=0.5, alert=True)]
    rules = with_budgets(rules, budgets)
    items = daily(2.0, 10, model="churn", team="growth", predictions=1000) + daily(
        1.0, 10, model="fraud", team="growth", predictions=1000
    )
    loads: list[float] = []

    def load(seconds: float) -> list[CostItem]:
        loads.append(seconds)
        return items

    def traffic(model: str, window: Window) -> dict[str, float | None]:
        raise AssertionError(f"cost rules measured {model}'s traffic")

    def run(at: datetime) -> list[tuple[str, str, str, float | None]]:
        outcomes = evaluate(
            rules,
            ["churn", "fraud"],
            traffic,
            history,
            now=at,
            measure_cost=cost_measure(load, budgets, at),
        )
        return [(o.model, o.rule.name, o.status, o.value) for o in outcomes]

    first: list[tuple[str, str, str, object]] = list(run(NOW))
    assert loads == [2 * 86400.0]  # one load, for the longest window asked for first
    assert first == [
        ("churn", "dear-answers", "fired", pytest.approx(2.0)),
        ("fraud", "dear-answers", "ok", pytest.approx(1.0)),
        ("team:growth", "growth-spend", "fired", pytest.approx(90.0)),
        ("team:growth", "budget.team.growth.warning", "fired", pytest.approx(0.9)),
        ("team:growth", "budget.team.growth.critical", "ok", pytest.approx(0.9)),
    ]
    later = run(NOW + timedelta(hours=2))
    assert [status for *_, status, _ in later] == ["suppressed", "ok", "fired", "suppressed", "ok"]
    recorded = history.list(model="team:growth", since=NOW + timedelta(hours=1))
    assert sorted((a.rule, a.status) for a in recorded) == [
        ("budget.team.growth.warning", "suppressed"),
        ("growth-spend", "fired"),
    ]


def test_cost_rules_are_no_data_where_costs_are_not_measured(history: SqlAlertHistory) -> None:
    rules = parse_rules(
        'rules:\n  - {name: spend, model: churn, metric: cost.forecast, condition: "> 1"}\n',
        PATH,
    )
    (outcome,) = evaluate(rules, ["churn"], lambda m, w: {}, history, now=NOW)
    assert (outcome.status, outcome.note) == ("no data", "cost metrics are not measured here")


# -- settings -------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """An empty working directory and no MLSHIP_* variables, restored afterwards."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLSHIP_")}
    for name in saved:
        del os.environ[name]
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)
        os.environ.update(saved)


def _settings_error(project: Path, toml: str) -> str:
    (project / CONFIG_FILE).write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings()
    return str(info.value)


def test_budgets_are_read_from_mlship_toml(project: Path) -> None:
    (project / CONFIG_FILE).write_text(
        '[[budgets]]\nteam = "growth"\nmonthly = 250.0\nalert = true\n\n'
        '[[budgets]]\nmodel = "churn"\nmonthly = 40\nwarn_at = 0.5\n'
    )
    growth, churn = load_settings().budgets
    assert (growth.team, growth.monthly, growth.warn_at, growth.alert) == (
        "growth",
        250.0,
        0.8,
        True,
    )
    assert (churn.model, churn.monthly, churn.warn_at, churn.alert) == ("churn", 40.0, 0.5, False)
    assert (growth.described, churn.subject) == ("team growth", "model:churn")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[budgets]]\nteam = "a"\nmonthly = 0\n', "budgets[0].monthly: Input should be greater"),
        ('[[budgets]]\nteam = "a"\nmonthly = inf\n', "budgets[0].monthly: expected a finite"),
        ('[[budgets]]\nteam = "a"\n', "budgets[0].monthly: Field required"),
        ("[[budgets]]\nmonthly = 5\n", 'budgets[0]: a budget names either team = "..." or'),
        (
            '[[budgets]]\nteam = "a"\nmodel = "b"\nmonthly = 5\n',
            'budgets[0]: a budget names either team = "..." or model = "...", exactly one',
        ),
        ('[[budgets]]\nteam = "a"\nmonthly = 5\nwarn_at = 1\n', "budgets[0].warn_at: Input"),
        (
            '[[budgets]]\nteam = "a"\nmonthly = 5\nlimit = 3\n',
            "budgets[0].limit: Extra inputs are not permitted",
        ),
        (
            '[[budgets]]\nteam = "a"\nmonthly = 5\n[[budgets]]\nteam = "a"\nmonthly = 9\n',
            "budgets: two budgets of team a: budgets[0] and budgets[1]",
        ),
        ('[[budgets]]\nteam = " a"\nmonthly = 5\n', "budgets[0].team: expected a name"),
    ],
)
def test_budget_mistakes_name_the_field(project: Path, toml: str, message: str) -> None:
    error = _settings_error(project, toml)
    assert f"invalid settings in {project / CONFIG_FILE}" in error
    assert message in error


_TOML_VALUES = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=10),
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("-inf" if value < 0 else "inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # TOML has no surrogate escapes
    return str(value)


@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["team", "model", "monthly", "warn_at", "alert", "extra"]),
            _TOML_VALUES,
            max_size=6,
        ),
        max_size=3,
    )
)
def test_any_budget_table_is_read_or_refused_naming_a_budget(
    project: Path, budgets: list[dict[str, object]]
) -> None:
    toml = "".join(
        "[[budgets]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in b.items())
        for b in budgets
    )
    (project / CONFIG_FILE).write_text(toml)
    error: str | None
    try:
        read = load_settings().budgets
    except ConfigError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert error.startswith(f"invalid settings in {project / CONFIG_FILE}"), error
        assert "budgets" in error, error
        return
    assert len(read) == len(budgets)
    for budget in read:
        assert budget.monthly > 0 and 0 < budget.warn_at < 1
        assert (budget.team is None) != (budget.model is None)
