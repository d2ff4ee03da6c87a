"""Alert evaluation and delivery: conditions, cool-downs kept in the store, a real webhook
receiver, failed deliveries recorded with their reason, and one measurement per window."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlship.config import Settings
from mlship.errors import MlshipError
from mlship.monitor.alerts import Firing, Outcome, evaluate
from mlship.monitor.history import SqlAlertHistory
from mlship.monitor.rules import RuleSet, parse_rules
from mlship.monitor.window import Window
from mlship.workspace import Workspace

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """A local HTTP server that records every POST and answers with ``status``."""

    url: str
    status: int = 200
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The POST must go to 127.0.0.1 itself, whatever proxy this machine sets."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    _no_proxies(monkeypatch)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            time.sleep(state.delay)
            answer = b"receiver broke" if state.status >= 400 else b"{}"
            try:
                self.send_response(state.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:  # the client gave up waiting (the timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def history(workspace: Workspace) -> SqlAlertHistory:
    return SqlAlertHistory(workspace.metadata)


def _rules(url: str, *rules: str, timeout: float = 5) -> RuleSet:
    text = (
        f"webhook:\n  url: {url}\n  timeout_seconds: {timeout}\n"
        '  headers: {Authorization: "Bearer s3cret"}\n'
        "rules:\n" + "".join(rules)
    )
    return parse_rules(text, Path("rules.yaml"))


DRIFT = """\
  - name: feature-drift
    model: churn
    metric: drift.share
    window: 500 rows
    condition: "> 0.3"
    severity: critical
    cooldown: 30m
    actions: [log, webhook]
    description: the features moved
"""


class Measured:
    """A measure function over fixed metrics that counts its calls (the input, not the subject)."""

    def __init__(self, metrics: Mapping[str, float | None]) -> None:
        self.metrics = dict(metrics)
        self.calls: list[tuple[str, Window]] = []

    def __call__(self, model: str, window: Window) -> Mapping[str, float | None]:
        self.calls.append((model, window))
        return self.metrics


def _only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1
    return outcomes[0]


def test_a_rule_that_holds_is_delivered_once_per_cooldown(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    rules = _rules(receiver.url, DRIFT)
    measure = Measured({"drift.share": 0.42})

    first = _only(evaluate(rules, ["churn"], measure, history, now=T0))
    assert (first.status, first.model, first.metric, first.value) == (
        "fired",
        "churn",
        "drift.share",
        0.42,
    )
    assert [(d.channel, d.ok, d.detail) for d in first.deliveries] == [
        ("log", True, "logged at ERROR"),
        ("webhook", True, "HTTP 200"),
    ]
    (request,) = receiver.requests
    assert request["path"] == "/hook"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {
        "model": "churn",
        "rule": "feature-drift",
        "metric": "drift.share",
        "value": 0.42,
        "condition": "> 0.3",
        "severity": "critical",
        "window": "last 500 rows",
        "fired_at": "2026-12-01T09:00:00+00:00",
        "description": "the features moved",
    }

    later = T0 + timedelta(minutes=10)
    second = _only(evaluate(rules, ["churn"], measure, history, now=later))
    assert second.status == "suppressed" and second.deliveries == ()
    assert "quiet until 09:30:00" in second.note
    assert len(receiver.requests) == 1
    assert [(a.status, a.at) for a in history.list()] == [("suppressed", later), ("fired", T0)]

    after = T0 + timedelta(minutes=30)
    third = _only(evaluate(rules, ["churn"], measure, history, now=after))
    assert third.status == "fired"
    assert len(receiver.requests) == 2
    assert history.last_delivered("churn", "feature-drift") == after


def test_history_rows_keep_the_alert_and_its_deliveries(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    rules = _rules(receiver.url, DRIFT)
    evaluate(rules, ["churn"], Measured({"drift.share": 0.5}), history, now=T0)
    (row,) = history.list(model="churn")
    assert (row.model, row.rule, row.metric, row.value, row.condition) == (
        "churn",
        "feature-drift",
        "drift.share",
        0.5,
        "> 0.3",
    )
    assert (row.severity, row.window, row.status, row.delivered) == (
        "critical",
        "last 500 rows",
        "fired",
        True,
    )
    assert row.deliveries == [
        {"channel": "log", "ok": True, "detail": "logged at ERROR", "result": None},
        {"channel": "webhook", "ok": True, "detail": "HTTP 200", "result": None},
    ]
    assert row.details == {"description": "the features moved"}
    assert row.at == T0 and row.at.tzinfo is not None


def test_the_cooldown_is_shared_by_every_process_using_the_store(
    receiver: Receiver, settings: Settings
) -> None:
    """A cron run and a watch loop each open the workspace; the second keeps quiet."""
    rules = _rules(receiver.url, DRIFT)
    measure = Measured({"drift.share": 0.9})
    first, second = Workspace.open(settings), Workspace.open(settings)
    try:
        evaluate(rules, ["churn"], measure, SqlAlertHistory(first.metadata), now=T0)
        again = evaluate(
            rules,
            ["churn"],
            measure,
            SqlAlertHistory(second.metadata),
            now=T0 + timedelta(minutes=1),
        )
    finally:
        first.close()
        second.close()
    assert _only(again).status == "suppressed"
    assert len(receiver.requests) == 1


def test_cooldown_zero_delivers_every_time(receiver: Receiver, history: SqlAlertHistory) -> None:
    rules = _rules(receiver.url, DRIFT.replace("cooldown: 30m", "cooldown: 0"))
    measure = Measured({"drift.share": 0.9})
    for _ in range(3):
        assert _only(evaluate(rules, ["churn"], measure, history, now=T0)).status == "fired"
    assert len(receiver.requests) == 3


def test_conditions_that_do_not_hold_are_ok_and_not_recorded(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    outcome = _only(
        evaluate(_rules(receiver.url, DRIFT), ["churn"], Measured({"drift.share": 0.3}), history)
    )
    assert (outcome.status, outcome.value, outcome.deliveries) == ("ok", 0.3, ())
    assert receiver.requests == [] and history.list() == []


def test_missing_values_and_unknown_metrics_are_no_data(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    rules = _rules(
        receiver.url,
        DRIFT,
        "  - {name: accuracy, metric: performance.accuracy, condition: '< 0.8'}\n",
        "  - {name: typo, metric: health.latency_p999_ms, condition: '> 100'}\n",
        "  - {name: nan, metric: quality.missing_rate, condition: '> 0.1'}\n",
    )
    measure = Measured(
        {
            "drift.share": None,
            "performance.accuracy": None,
            "health.latency_p99_ms": 80.0,
            "quality.missing_rate": float("nan"),
        }
    )
    outcomes = evaluate(rules, ["churn"], measure, history, now=T0)
    assert [o.status for o in outcomes] == ["no data"] * 4
    assert outcomes[0].note == "no drift.share over the last 500 rows"
    assert outcomes[2].note.startswith("unknown metric 'health.latency_p999_ms'")
    assert "health.latency_p99_ms" in outcomes[2].note
    assert receiver.requests == [] and history.list() == []


def test_a_model_the_monitor_cannot_measure_is_no_data(history: SqlAlertHistory) -> None:
    def measure(model: str, window: Window) -> Mapping[str, float | None]:
        if model == "fraud":
            raise MlshipError("no predictions logged for fraud")
        return {"health.error_rate": 0.5}

    rules = parse_rules(
        "rules:\n  - {name: errors, metric: health.error_rate, condition: '> 0.1'}\n", Path("r")
    )
    churn, fraud = evaluate(rules, ["churn", "fraud"], measure, history, now=T0)
    assert churn.status == "fired"
    assert fraud.status == "no data"
    assert fraud.note == "cannot measure fraud over the last 1h: no predictions logged for fraud"


def test_measure_is_called_once_per_model_and_window(history: SqlAlertHistory) -> None:
    rules = parse_rules(
        """\
rules:
  - {name: a, metric: drift.share, window: 500 rows, condition: "> 1"}
  - {name: b, metric: drift.drifted_columns, window: 500 rows, condition: "> 3"}
  - {name: c, metric: health.error_rate, window: 60m, condition: "> 1"}
  - {name: d, metric: health.latency_p99_ms, window: 1h, condition: "> 1000"}
  - {name: e, model: churn, metric: quality.missing_rate, window: 2d, condition: "> 1"}
  - {name: f, model: elsewhere, metric: quality.missing_rate, condition: "> 1"}
""",
        Path("r"),
    )
    measure = Measured(
        {
            "drift.share": 0.1,
            "drift.drifted_columns": 1.0,
            "health.error_rate": 0.0,
            "health.latency_p99_ms": 20.0,
            "quality.missing_rate": 0.0,
        }
    )
    outcomes = evaluate(rules, ["churn", "fraud", "churn"], measure, history, now=T0)
    rows, hour, days = Window(rows=500), Window(seconds=3600), Window(seconds=172800)
    assert measure.calls == [
        ("churn", rows),
        ("churn", hour),
        ("churn", days),
        ("fraud", rows),
        ("fraud", hour),
    ]
    assert [(o.model, o.rule.name, o.status) for o in outcomes] == [
        ("churn", "a", "ok"),
        ("churn", "b", "ok"),
        ("churn", "c", "ok"),
        ("churn", "d", "ok"),
        ("churn", "e", "ok"),
        ("fraud", "a", "ok"),
        ("fraud", "b", "ok"),
        ("fraud", "c", "ok"),
        ("fraud", "d", "ok"),
    ]


def test_a_receiver_answering_500_is_a_failed_delivery(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    receiver.status = 500
    outcome = _only(
        evaluate(_rules(receiver.url, DRIFT), ["churn"], Measured({"drift.share": 1}), history)
    )
    log, webhook = outcome.deliveries
    assert outcome.status == "fired" and log.ok
    assert not webhook.ok
    assert webhook.detail == "HTTP 500 Internal Server Error: receiver broke"
    assert len(receiver.requests) == 1
    (row,) = history.list()
    assert row.deliveries[1] == {
        "channel": "webhook",
        "ok": False,
        "detail": "HTTP 500 Internal Server Error: receiver broke",
        "result": None,
    }
    assert row.delivered  # the log line reached someone: the cool-down starts


def test_a_closed_port_is_a_failed_delivery_and_the_other_actions_still_run(
    history: SqlAlertHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxies(monkeypatch)
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rules = _rules(
        f"http://127.0.0.1:{port}/hook", DRIFT.replace("[log, webhook]", "[webhook, retrain, log]")
    )
    seen: list[Firing] = []

    def retrain(firing: Firing) -> dict[str, Any]:
        seen.append(firing)
        return {"model": "churn", "version": 3, "stage": "staging"}

    outcome = _only(
        evaluate(rules, ["churn"], Measured({"drift.share": 1}), history, retrain=retrain)
    )
    webhook, retrained, log = outcome.deliveries
    assert not webhook.ok
    assert webhook.detail.startswith(f"cannot reach http://127.0.0.1:{port}/hook:")
    assert "refused" in webhook.detail.lower()
    assert (retrained.ok, retrained.detail) == (True, "retrained churn:3 (staging)")
    assert retrained.result == {"model": "churn", "version": 3, "stage": "staging"}
    assert [f.model for f in seen] == ["churn"]
    assert log.ok
    (row,) = history.list()
    assert [d["ok"] for d in row.deliveries] == [False, True, True]
    assert "refused" in row.deliveries[0]["detail"].lower()
    assert row.deliveries[1]["result"] == {"model": "churn", "version": 3, "stage": "staging"}


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_delivery(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    receiver.delay = 1.0
    rules = _rules(receiver.url, DRIFT, timeout=0.2)
    started = time.monotonic()
    outcome = _only(evaluate(rules, ["churn"], Measured({"drift.share": 1}), history))
    assert time.monotonic() - started < 0.9
    webhook = outcome.deliveries[1]
    assert not webhook.ok
    assert webhook.detail == f"no answer from {receiver.url} within 0.2s"


def test_when_every_action_fails_the_next_evaluation_tries_again(
    receiver: Receiver, history: SqlAlertHistory
) -> None:
    receiver.status = 503
    rules = _rules(receiver.url, DRIFT.replace("[log, webhook]", "[webhook]"))
    measure = Measured({"drift.share": 1})
    assert _only(evaluate(rules, ["churn"], measure, history, now=T0)).status == "fired"
    assert history.last_delivered("churn", "feature-drift") is None
    receiver.status = 200
    retried = _only(evaluate(rules, ["churn"], measure, history, now=T0 + timedelta(minutes=1)))
    assert retried.status == "fired" and retried.deliveries[0].ok
    assert len(receiver.requests) == 2
    assert history.last_delivered("churn", "feature-drift") == T0 + timedelta(minutes=1)


def test_retrain_errors_and_a_missing_callback_are_recorded(history: SqlAlertHistory) -> None:
    rules = parse_rules(
        "rules:\n  - {name: r, metric: performance.accuracy.drop, condition: '> 0.05', "
        "cooldown: '0', actions: [retrain]}\n",
        Path("r"),
    )
    measure = Measured({"performance.accuracy.drop": 0.1})

    def broken(firing: Firing) -> dict[str, Any]:
        raise MlshipError("no training spec for churn")

    failed = _only(evaluate(rules, ["churn"], measure, history, retrain=broken))
    assert [(d.ok, d.detail) for d in failed.deliveries] == [
        (False, "MlshipError: no training spec for churn")
    ]
    missing = _only(evaluate(rules, ["churn"], measure, history))
    assert missing.deliveries[0].detail == "retraining is not available here (no retrain callback)"
    assert [row.deliveries[0]["ok"] for row in history.list()] == [False, False]


def test_log_lines_carry_the_level_of_the_severity_and_the_fields(
    history: SqlAlertHistory, caplog: pytest.LogCaptureFixture
) -> None:
    rules = parse_rules(
        """\
rules:
  - {name: fyi, metric: health.throughput_rps, condition: "< 1", severity: info}
  - {name: warn, metric: health.throughput_rps, condition: "< 1"}
  - {name: page, metric: health.throughput_rps, condition: "< 1", severity: critical}
""",
        Path("r"),
    )
    with caplog.at_level(logging.INFO, logger="mlship.monitor.alerts"):
        evaluate(rules, ["churn"], Measured({"health.throughput_rps": 0.0}), history, now=T0)
    assert [(r.name, r.levelno) for r in caplog.records] == [
        ("mlship.monitor.alerts", logging.INFO),
        ("mlship.monitor.alerts", logging.WARNING),
        ("mlship.monitor.alerts", logging.ERROR),
    ]
    record = caplog.records[2]
    assert record.getMessage() == (
        "alert page on churn: health.throughput_rps = 0.0 (< 1 over the last 1h)"
    )
    fields = ("event", "model", "rule", "metric", "value", "condition", "window", "fired_at")
    assert {name: getattr(record, name) for name in fields} == {
        "event": "alert",
        "model": "churn",
        "rule": "page",
        "metric": "health.throughput_rps",
        "value": 0.0,
        "condition": "< 1",
        "window": "last 1h",
        "fired_at": "2026-12-01T09:00:00+00:00",
    }


def test_history_lists_by_model_and_time_newest_first(history: SqlAlertHistory) -> None:
    def add(model: str, minutes: int) -> None:
        history.record(
            model=model,
            rule="r",
            metric="drift.share",
            value=1.0,
            condition="> 0.3",
            severity="warning",
            window="last 1h",
            status="fired",
            deliveries=[{"channel": "log", "ok": True, "detail": "logged at WARNING"}],
            at=T0 + timedelta(minutes=minutes),
        )

    for model, minutes in [("churn", 0), ("fraud", 5), ("churn", 10), ("churn", 20)]:
        add(model, minutes)
    assert [(a.model, a.at.minute) for a in history.list()] == [
        ("churn", 20),
        ("churn", 10),
        ("fraud", 5),
        ("churn", 0),
    ]
    assert [a.at.minute for a in history.list(model="churn", limit=2)] == [20, 10]
    since = history.list(since=T0 + timedelta(minutes=5))
    assert [(a.model, a.at.minute) for a in since] == [("churn", 20), ("churn", 10), ("fraud", 5)]
    # a time in another zone is the same instant
    paris = (T0 + timedelta(minutes=15)).astimezone(timezone(timedelta(hours=1)))
    assert paris.hour == 10
    assert len(history.list(since=paris)) == 1
    assert history.last_delivered("churn", "r") == T0 + timedelta(minutes=20)
    assert history.last_delivered("churn", "other") is None
