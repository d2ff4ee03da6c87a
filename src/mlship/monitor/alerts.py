"""Evaluate alert rules against the monitor's metrics and deliver the ones that hold.

:func:`evaluate` measures each model once per distinct window (rules over the same window share
the measurement), compares every rule's metric with its condition and, for each rule that holds,
either delivers it to the rule's actions or, when the same rule was delivered for the same model
within its cool-down, records it as ``suppressed``. The cool-down works like Alertmanager's repeat
interval: however often the condition holds, nobody hears about it again until the cool-down has
passed. It is read from the alert history in the metadata store, so separate processes agree.

Rules on ``cost.*`` metrics are measured from the costs (``measure_cost``), not from the traffic,
and go through the same conditions, cool-downs, history and actions. A cost rule that names a
team is evaluated once for the team; its alerts are about ``team:NAME`` (the history's model).

Rules on ``stream.*`` metrics name a stream spec and are measured by ``measure_stream``: the
group's backlog from the broker (``stream.lag``, ``stream.pending``, whatever the window) and the
events' figures from the stream's prediction log over the window. Their alerts are about the
model the rule names, else ``stream:NAME`` (the spec's name). A stream that cannot be measured
(its broker out of reach, its spec gone) leaves its rules ``not evaluated``, with the reason; the
pass goes on with the other rules.

Actions:

- ``log``: one line on the ``mlship.monitor.alerts`` logger, at INFO, WARNING or ERROR by
  severity, with the alert's fields as ``extra`` (for structured log handlers).
- ``webhook``: a JSON POST to the rules file's webhook (standard library only). A refused
  connection, a timeout or an answer other than 2xx is recorded as a failed delivery with its
  reason; it never raises and never stops the other actions.
- ``retrain``: calls the ``retrain`` callback the caller passes (the CLI wires it to training);
  its result or its error is recorded. The call is synchronous: a callback that trains for minutes
  should start the work elsewhere and return at once.

A firing counts as delivered, and starts the cool-down, when at least one of its actions
succeeded; when all failed, the next evaluation tries again.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any, Literal, Protocol

from mlship.errors import MlshipError
from mlship.monitor.history import delivery_line
from mlship.monitor.rules import Action, Rule, RuleSet, Webhook
from mlship.monitor.stream_figures import BROKER_METRICS
from mlship.monitor.window import Window
from mlship.store.alert_history import AlertHistory
from mlship.store.clock import as_utc

log = logging.getLogger(__name__)

Measure = Callable[[str, Window], Mapping[str, float | None]]
"""The monitor's metrics of one model over one window: ``measure("churn", Window(rows=500))``."""

CostMeasure = Callable[[str | None, str | None, Window], Mapping[str, float | None]]
"""The cost metrics of a model or a team over a window: ``measure_cost("churn", None, window)``
or ``measure_cost(None, "growth", window)``."""


class StreamMeasure(Protocol):
    """The ``stream.*`` metrics of a stream spec (its path, as the rules hold it): the broker's
    when the window is None, else the prediction log's over the window."""

    def __call__(self, stream: str, window: Window | None) -> Mapping[str, float | None]: ...

    def subject(self, stream: str) -> str:
        """What the stream's alerts are about when its rule names no model: ``stream:NAME``."""
        ...


Status = Literal["fired", "suppressed", "ok", "no data", "not evaluated"]

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


@dataclass(frozen=True)
class Firing:
    """A rule that holds for a model: what every action is told."""

    rule: Rule
    model: str
    value: float
    at: datetime

    def payload(self) -> dict[str, Any]:
        """The JSON a webhook receives (and the fields of the log line)."""
        return {
            "model": self.model,
            **({"team": self.rule.team} if self.rule.team is not None else {}),
            "rule": self.rule.name,
            "metric": self.rule.metric,
            "value": self.value,
            "condition": str(self.rule.condition),
            "severity": self.rule.severity,
            "window": self.rule.window.label,
            "fired_at": self.at.isoformat(),
            "description": self.rule.description,
        }


Retrain = Callable[[Firing], dict[str, Any]]
"""Starts retraining for a firing; returns what it did, e.g. ``{"model": "churn", "version": 3,
"stage": "staging"}``. An exception is recorded as the delivery's error."""


@dataclass(frozen=True)
class Delivery:
    """What one action did with a firing."""

    channel: Action
    ok: bool
    detail: str
    """``logged at WARNING``, ``HTTP 200``, the error, or a summary of the retrain result."""
    result: dict[str, Any] | None = None
    """The retrain callback's answer."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return delivery_line(self.channel, self.ok, self.detail)


@dataclass(frozen=True)
class Outcome:
    """One rule for one model in one evaluation: a row of ``mlship monitor run``'s table."""

    rule: Rule
    model: str
    status: Status
    value: float | None = None
    deliveries: tuple[Delivery, ...] = ()
    note: str = ""
    """Why there was no data, or until when a suppressed alert keeps quiet."""

    @property
    def metric(self) -> str:
        return self.rule.metric


def evaluate(
    rules: RuleSet,
    models: Sequence[str],
    measure: Measure,
    history: AlertHistory,
    *,
    now: datetime | None = None,
    retrain: Retrain | None = None,
    measure_cost: CostMeasure | None = None,
    measure_stream: StreamMeasure | None = None,
) -> list[Outcome]:
    """Check every rule that applies to each of ``models``, every team's cost rules and every
    stream's rules; deliver and record those that hold.

    ``measure`` (``measure_cost`` for ``cost.*`` rules) is called once per model and distinct
    window. A metric that is None (no labels yet, no traffic in the window) or that the monitor
    does not produce is ``no data``, never an alert; so is a model the monitor cannot measure (its
    :class:`~mlship.errors.MlshipError` is the note). A stream that cannot be measured is
    ``not evaluated``, with the reason. Outcomes come in the order of ``models``, then of the
    rules in the file; the teams' outcomes come next, the streams' last.
    """
    moment = as_utc(now or datetime.now(UTC))
    outcomes: list[Outcome] = []
    subjects: list[tuple[str | None, str | None, list[Rule]]] = [
        (model, None, rules.for_model(model)) for model in dict.fromkeys(models)
    ]
    subjects += [(None, team, rules.for_team(team)) for team in rules.teams]
    for model, team, watching in subjects:
        measured: dict[tuple[bool, Window], Mapping[str, float | None] | str] = {}
        for rule in watching:
            key = (rule.is_cost, rule.window)
            if key not in measured:
                measured[key] = _measure(measure, measure_cost, model, team, key)
            about = model if model is not None else rule.subject
            outcomes.append(_check(rule, about, measured[key], rules, history, moment, retrain))
    for stream in rules.streams:
        outcomes.extend(_check_stream(stream, rules, measure_stream, history, moment, retrain))
    return outcomes


def _check_stream(
    stream: str,
    rules: RuleSet,
    measure_stream: StreamMeasure | None,
    history: AlertHistory,
    now: datetime,
    retrain: Retrain | None,
) -> list[Outcome]:
    """The outcomes of the rules on ``stream``: its broker read once, its log once per window."""
    subject = measure_stream.subject(stream) if measure_stream is not None else f"stream:{stream}"
    measured: dict[Window | None, Mapping[str, float | None] | str] = {}
    outcomes = []
    for rule in rules.for_stream(stream):
        about = rule.model or subject
        key = None if rule.metric in BROKER_METRICS else rule.window
        if key not in measured:
            measured[key] = _measure_stream(measure_stream, stream, key)
        found = measured[key]
        if isinstance(found, str):
            outcomes.append(Outcome(rule, about, "not evaluated", note=found))
            continue
        outcomes.append(_check(rule, about, found, rules, history, now, retrain))
    return outcomes


def _measure_stream(
    measure_stream: StreamMeasure | None, stream: str, window: Window | None
) -> Mapping[str, float | None] | str:
    if measure_stream is None:
        return "stream metrics are not measured here"
    try:
        return measure_stream(stream, window)
    except MlshipError as exc:
        return str(exc)


def _measure(
    measure: Measure,
    measure_cost: CostMeasure | None,
    model: str | None,
    team: str | None,
    key: tuple[bool, Window],
) -> Mapping[str, float | None] | str:
    """The metrics, or why the monitor could not measure them."""
    is_cost, window = key
    about = model if model is not None else f"team {team}"
    try:
        if is_cost:
            if measure_cost is None:
                return "cost metrics are not measured here"
            return measure_cost(model, team, window)
        if model is None:  # a validated RuleSet has no team rule of other metrics
            return f"only cost.* metrics are measured for team {team}"
        return measure(model, window)
    except MlshipError as exc:
        return f"cannot measure {about} over the {window.label}: {exc}"


def _check(
    rule: Rule,
    model: str,
    metrics: Mapping[str, float | None] | str,
    rules: RuleSet,
    history: AlertHistory,
    now: datetime,
    retrain: Retrain | None,
) -> Outcome:
    if isinstance(metrics, str):
        return Outcome(rule, model, "no data", note=metrics)
    if rule.metric not in metrics:
        close = difflib.get_close_matches(rule.metric, list(metrics), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        note = f"unknown metric {rule.metric!r}{hint} (`mlship monitor status --json` lists them)"
        return Outcome(rule, model, "no data", note=note)
    raw = metrics[rule.metric]
    if raw is None or math.isnan(raw):
        return Outcome(rule, model, "no data", note=f"no {rule.metric} over the {rule.window}")
    value = float(raw)
    if not rule.condition.holds(value):
        return Outcome(rule, model, "ok", value)
    firing = Firing(rule, model, value, now)
    last = history.last_delivered(model, rule.name)
    if last is not None and now < last + rule.cooldown:
        until = last + rule.cooldown
        note = f"delivered at {last:%Y-%m-%d %H:%M:%S} UTC; quiet until {until:%H:%M:%S}"
        details = {"last_delivered": last.isoformat(), "quiet_until": until.isoformat()}
        _record(history, firing, "suppressed", (), details)
        return Outcome(rule, model, "suppressed", value, note=note)
    deliveries = tuple(_deliver(action, firing, rules.webhook, retrain) for action in rule.actions)
    _record(history, firing, "fired", deliveries, {"description": rule.description})
    return Outcome(rule, model, "fired", value, deliveries)


def _record(
    history: AlertHistory,
    firing: Firing,
    status: Literal["fired", "suppressed"],
    deliveries: Sequence[Delivery],
    details: dict[str, Any],
) -> None:
    rule = firing.rule
    history.record(
        at=firing.at,
        model=firing.model,
        rule=rule.name,
        metric=rule.metric,
        value=firing.value,
        condition=str(rule.condition),
        severity=rule.severity,
        window=rule.window.label,
        status=status,
        deliveries=[delivery.to_json() for delivery in deliveries],
        details=details,
    )


def _deliver(
    action: Action, firing: Firing, webhook: Webhook | None, retrain: Retrain | None
) -> Delivery:
    if action == "log":
        return log_alert(firing)
    if action == "webhook":
        if webhook is None:  # a validated RuleSet refuses this; kept for hand-built ones
            return Delivery("webhook", False, "no webhook is configured in the rules file")
        return post_webhook(webhook, firing.payload())
    return run_retrain(firing, retrain)


def log_alert(firing: Firing) -> Delivery:
    """One log line at the severity's level, with the payload's fields as ``extra``."""
    level = _LEVELS[firing.rule.severity]
    payload = firing.payload()
    log.log(
        level,
        "alert %s on %s: %s = %s (%s over the %s)",
        payload["rule"],
        payload["model"],
        payload["metric"],
        payload["value"],
        payload["condition"],
        payload["window"],
        extra={"event": "alert", **payload},
    )
    return Delivery("log", True, f"logged at {logging.getLevelName(level)}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a GET without its body; report it instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_webhook(webhook: Webhook, payload: Mapping[str, Any]) -> Delivery:
    """POST ``payload`` as JSON; any failure is returned as a failed delivery, never raised."""
    request = urllib.request.Request(  # noqa: S310 - the rules file only allows http(s) URLs
        webhook.url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "mlship", **webhook.headers},
    )
    try:
        with _OPENER.open(request, timeout=webhook.timeout_seconds) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", False, f"HTTP {exc.code} {exc.reason}{_body(exc)}")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Delivery("webhook", False, _timed_out(webhook))
        return Delivery("webhook", False, f"cannot reach {webhook.url}: {exc.reason}")
    except TimeoutError:
        return Delivery("webhook", False, _timed_out(webhook))
    except (OSError, HTTPException) as exc:  # a connection dropped mid-answer, a garbled answer
        return Delivery("webhook", False, f"{type(exc).__name__}: {exc}")
    return Delivery("webhook", True, f"HTTP {status}")


def _timed_out(webhook: Webhook) -> str:
    return f"no answer from {webhook.url} within {webhook.timeout_seconds:g}s"


def _body(error: urllib.error.HTTPError) -> str:
    """The start of an error answer's body, which often says what the receiver disliked."""
    try:
        text = error.read(200).decode("utf-8", "replace").strip()
    except (OSError, HTTPException):
        return ""
    return f": {text}" if text else ""


def run_retrain(firing: Firing, retrain: Retrain | None) -> Delivery:
    """Call ``retrain``; its result, or its error, becomes the delivery."""
    if retrain is None:
        return Delivery("retrain", False, "retraining is not available here (no retrain callback)")
    try:
        result = retrain(firing)
    except Exception as exc:  # any failure of the callback is this delivery's result
        return Delivery("retrain", False, f"{type(exc).__name__}: {exc}")
    plain = json.loads(json.dumps(result, default=str))  # what the history's JSON column keeps
    return Delivery("retrain", True, _summary(plain), plain)


def _summary(result: dict[str, Any]) -> str:
    if "model" in result and "version" in result:
        stage = f" ({result['stage']})" if result.get("stage") else ""
        return f"retrained {result['model']}:{result['version']}{stage}"
    return ", ".join(f"{key}={value}" for key, value in result.items()) or "retraining started"
