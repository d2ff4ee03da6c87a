"""The alert rules file: every field and default, and mistakes named by file, line and field."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from mlship.monitor.rules import Condition, RulesError, load_rules, parse_rules
from mlship.monitor.window import DEFAULT_WINDOW, Window, format_duration, parse_duration

FULL = """\
webhook:
  url: http://127.0.0.1:9000/hook
  timeout_seconds: 2.5
  headers: {Authorization: "Bearer abc"}
rules:
  - name: feature-drift
    model: churn
    metric: drift.share
    window: 500 rows
    condition: "> 0.3"
    severity: critical
    cooldown: 30m
    actions: [log, webhook, retrain]
    description: more than 30% of the features drifted
  - name: slow
    metric: health.latency_p99_ms
    condition: ">= 250"
"""

PATH = Path("/project/rules.yaml")


def _error(text: str) -> str:
    with pytest.raises(RulesError) as info:
        parse_rules(text, PATH)
    return str(info.value)


def _with_slow(line: str) -> str:
    """FULL with one more line in the second rule."""
    return FULL + f"    {line}\n"


def test_every_field_is_read() -> None:
    rules = parse_rules(FULL, PATH)
    assert rules.webhook is not None
    assert rules.webhook.url == "http://127.0.0.1:9000/hook"
    assert rules.webhook.timeout_seconds == 2.5
    assert rules.webhook.headers == {"Authorization": "Bearer abc"}
    drift = rules.rules[0]
    assert drift.name == "feature-drift"
    assert drift.model == "churn"
    assert drift.metric == "drift.share"
    assert drift.window == Window(rows=500)
    assert drift.condition == Condition(">", 0.3)
    assert drift.severity == "critical"
    assert drift.cooldown == timedelta(minutes=30)
    assert drift.actions == ("log", "webhook", "retrain")
    assert drift.description == "more than 30% of the features drifted"


def test_defaults() -> None:
    text = "rules:\n  - {name: r, metric: quality.missing_rate, condition: '> 0'}\n"
    rules = parse_rules(text, PATH)
    assert rules.webhook is None
    (rule,) = rules.rules
    assert rule.model is None
    assert rule.window == DEFAULT_WINDOW == Window(seconds=3600)
    assert rule.severity == "warning"
    assert rule.cooldown == timedelta(hours=1)
    assert rule.actions == ("log",)
    assert rule.description is None
    text = "webhook: {url: 'https://hooks.example.com/x'}\nrules: []\n"
    webhook = parse_rules(text, PATH).webhook
    assert webhook is not None and webhook.timeout_seconds == 5 and webhook.headers == {}


def test_rules_without_a_model_watch_every_model() -> None:
    rules = parse_rules(FULL, PATH)
    assert [rule.name for rule in rules.for_model("churn")] == ["feature-drift", "slow"]
    assert [rule.name for rule in rules.for_model("fraud")] == ["slow"]


def test_load_rules_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FULL)
    assert len(load_rules(path).rules) == 2
    path.write_text(FULL.replace('condition: ">= 250"', 'condition: ">= x"'))
    where = re.escape(f"{path}, line 17, field rules[1].condition:")
    with pytest.raises(RulesError, match=f"^{where}"):
        load_rules(str(path))
    with pytest.raises(RulesError, match=r"rules file .*missing\.yaml does not exist"):
        load_rules(tmp_path / "missing.yaml")


def test_dump_spells_windows_conditions_and_durations_as_written() -> None:
    dumped = parse_rules(FULL, PATH).model_dump(mode="json")["rules"][0]
    assert (dumped["window"], dumped["condition"], dumped["cooldown"]) == (
        "last 500 rows",
        "> 0.3",
        "30m",
    )


# -- windows, durations, conditions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "window", "label"),
    [
        ("500 rows", Window(rows=500), "last 500 rows"),
        ("1 row", Window(rows=1), "last 1 row"),
        ("45s", Window(seconds=45), "last 45s"),
        ("30m", Window(seconds=1800), "last 30m"),
        ("1h", Window(seconds=3600), "last 1h"),
        ("90m", Window(seconds=5400), "last 90m"),
        ("2d", Window(seconds=172800), "last 2d"),
    ],
)
def test_windows(text: str, window: Window, label: str) -> None:
    assert Window.parse(text) == window
    assert window.label == label == str(window)


def test_equal_windows_are_one_key() -> None:
    assert len({Window.parse("60m"), Window.parse("1h"), Window(seconds=3600.0)}) == 1
    assert len({Window.parse("500 rows"), Window(rows=500), Window(rows=501)}) == 2


@pytest.mark.parametrize(
    "kwargs", [{}, {"rows": 5, "seconds": 5.0}, {"rows": 0}, {"seconds": 0.0}, {"seconds": -1.0}]
)
def test_a_window_is_exactly_one_positive_size(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="window"):
        Window(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"), [("45s", 45), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("0", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["1.5h", "1 h", "1H", "-1h", "90", "1h30m", "h", "", "1w"])
def test_durations_are_strict(text: str) -> None:
    with pytest.raises(ValueError, match="45s, 30m, 1h or 2d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [
        ("> 0.3", 0.31, True),
        ("> 0.3", 0.3, False),
        (">= 0.3", 0.3, True),
        ("< -1", -2.0, True),
        ("<= 1e-3", 0.001, True),
        ("== 0", 0.0, True),
        ("!= 0", 0.0, False),
        ("<.5", 0.4, True),
    ],
)
def test_conditions(text: str, value: float, holds: bool) -> None:
    assert Condition.parse(text).holds(value) is holds


def test_conditions_print_as_written() -> None:
    assert [str(Condition.parse(t)) for t in ("> 0.3", ">=250", "< 1e-05")] == [
        "> 0.3",
        ">= 250",
        "< 1e-05",
    ]


@pytest.mark.parametrize("text", ["0.3", "=> 1", "> abc", "> nan", "> inf", ">", "> 1 2", "~ 1"])
def test_bad_conditions(text: str) -> None:
    with pytest.raises(ValueError, match="expected a comparison and a number"):
        Condition.parse(text)


# -- errors name the file, the line and the field -------------------------------------------------


def test_unknown_metric_group() -> None:
    message = _error(FULL.replace("metric: drift.share", "metric: latency.p99"))
    assert message.startswith("/project/rules.yaml, line 8, field rules[0].metric: ")
    assert "unknown metric 'latency.p99'" in message
    assert "drift., quality., performance., health." in message
    assert "line 8" in _error(FULL.replace("metric: drift.share", "metric: drift"))


def test_bad_condition() -> None:
    message = _error(FULL.replace('"> 0.3"', '"over 0.3"'))
    assert message.startswith("/project/rules.yaml, line 10, field rules[0].condition: ")
    assert "'> 0.3'" in message and "(got 'over 0.3')" in message


def test_an_unquoted_comparison_is_explained() -> None:
    message = _error(FULL.replace('"> 0.3"', "> 0.3"))
    assert message.startswith("/project/rules.yaml, line 10, field condition: quote the comparison")
    assert "line 17, field condition: quote" in _error(FULL.replace('">= 250"', "!= 0"))


def test_bad_window() -> None:
    message = _error(FULL.replace("window: 500 rows", "window: 500"))
    assert message.startswith("/project/rules.yaml, line 9, field rules[0].window: ")
    assert "'500 rows'" in message and "(got 500)" in message
    assert "longer than 0" in _error(FULL.replace("window: 500 rows", "window: 0m"))
    assert "line 9" in _error(FULL.replace("window: 500 rows", "window: 5 minutes"))


def test_bad_duration() -> None:
    message = _error(FULL.replace("cooldown: 30m", "cooldown: 30"))
    assert message.startswith("/project/rules.yaml, line 12, field rules[0].cooldown: ")
    assert "45s, 30m, 1h or 2d" in message
    assert "(got '1.5h')" in _error(FULL.replace("cooldown: 30m", "cooldown: 1.5h"))
    assert parse_rules(FULL.replace("cooldown: 30m", "cooldown: 0"), PATH).rules[0].cooldown == (
        timedelta(0)
    )


def test_duplicate_rule_names() -> None:
    message = _error(FULL.replace("name: slow", "name: feature-drift"))
    assert message == (
        "/project/rules.yaml, line 15, field rules[1].name: "
        "two rules are called 'feature-drift' (see rules[0])"
    )


def test_webhook_action_needs_the_webhook_section() -> None:
    without = FULL.split("rules:\n", 1)[1]
    message = _error("rules:\n" + without)
    assert message.startswith("/project/rules.yaml, line 9, field rules[0].actions[1]: ")
    assert "needs a top-level `webhook:` section" in message


def test_unknown_fields_list_the_known_ones() -> None:
    message = _error(_with_slow("treshold: 3"))
    assert message.startswith("/project/rules.yaml, line 18, field rules[1].treshold: ")
    expected = "unknown field; expected one of: name, model, team, stream, metric, window"
    assert expected in message
    top = _error("alerts: []\n" + FULL)
    assert "line 1, field alerts: unknown field; expected one of: webhook, drift, rules" in top
    hook = _error(FULL.replace("timeout_seconds: 2.5", "timeout: 2.5"))
    assert "line 3, field webhook.timeout: unknown field; expected one of: url" in hook


def test_other_mistakes_name_their_line() -> None:
    assert "line 11, field rules[0].severity: Input should be 'info', 'warning' or 'critical'" in (
        _error(FULL.replace("severity: critical", "severity: urgent"))
    )
    assert "line 13, field rules[0].actions[2]: Input should be 'log', 'webhook' or 'retrain'" in (
        _error(FULL.replace("retrain]", "email]"))
    )
    assert "line 13, field rules[0].actions[1]: action log is listed twice" in (
        _error(FULL.replace("[log, webhook, retrain]", "[log, log]"))
    )
    assert "line 2, field webhook.url: expected an http:// or https:// address" in (
        _error(FULL.replace("http://127.0.0.1:9000/hook", "file:///etc/passwd"))
    )
    assert "line 6, field rules[0].name: a rule name is letters" in (
        _error(FULL.replace("name: feature-drift", "name: feature drift"))
    )
    assert "line 15, field rules[1].condition: required field is missing" in (
        _error(FULL.replace('    condition: ">= 250"\n', ""))
    )
    assert _error("- a rule\n") == (
        "/project/rules.yaml, line 1: expected a mapping with `rules` (and maybe `webhook`)"
    )
    assert _error("rules: [\n").startswith("/project/rules.yaml, line 2: invalid YAML")


def test_every_mistake_is_reported_at_once() -> None:
    text = (
        FULL.replace("severity: critical", "severity: urgent")
        .replace("90", "9")
        .replace('">= 250"', '"=< 250"')
    )
    lines = _error(text).splitlines()
    assert [line.split(", field ")[0] for line in lines] == [
        "/project/rules.yaml, line 11",
        "/project/rules.yaml, line 17",
    ]


def test_the_drift_section_sets_methods_thresholds_and_the_share(tmp_path: Path) -> None:
    text = (
        "drift:\n  share: 0.3\n  columns:\n"
        "    age: {method: psi, threshold: 0.2}\n    x: {threshold: 0.01}\n"
    )
    rules = parse_rules(text, tmp_path / "rules.yaml")
    assert rules.rules == ()
    assert rules.drift.share == 0.3
    assert rules.drift.methods == {"age": "psi"}
    assert rules.drift.thresholds == {"age": 0.2, "x": 0.01}
    bad = "drift:\n  columns:\n    age:\n      method: tvd\n"
    with pytest.raises(RulesError, match=r"line 4, field drift.columns.age.method: "):
        parse_rules(bad, tmp_path / "rules.yaml")
