"""Alert rules: which monitored metric, over which window of traffic, crossing what, tells whom.

A rules file is YAML::

    webhook:                          # optional; where `webhook` actions post
      url: http://127.0.0.1:9000/hook
      timeout_seconds: 5
      headers: {Authorization: "Bearer ..."}
    drift:                            # optional: how drift is judged
      share: 0.5                      # share of drifted columns that makes the dataset drift
      columns:                        # per-column method and threshold (defaults by kind/size)
        monthly_charges: {method: psi, threshold: 0.2}
    rules:
      - name: feature-drift           # unique
        model: churn                  # optional: every monitored model when left out
        metric: drift.share           # drift.*, quality.*, performance.*, health.* or cost.*
        window: 500 rows              # or a duration: 45s, 30m, 1h, 2d (default 1h)
        condition: "> 0.3"            # > >= < <= == != and a number (quoted: `>` is YAML syntax)
        severity: warning             # info | warning | critical
        cooldown: 30m                 # no repeat delivery for this long; 0 disables (default 1h)
        actions: [log, webhook, retrain]
        description: more than 30% of the features drifted
      - name: growth-spend            # cost.* rules may name a team instead of a model
        team: growth
        metric: cost.forecast         # the month's forecast spend of the team's models
        condition: "> 250"
      - name: stream-behind           # stream.* rules name a stream spec instead of a model
        stream: churn-stream.yaml     # relative to this file
        metric: stream.lag            # undelivered + pending events of the spec's group
        condition: "> 1000"

Mistakes are reported the way spec mistakes are (:mod:`mlship.yamlfile`): file, line and field.
Durations are strict (a whole number and one of s, m, h, d) because a cool-down of "5" could mean
seconds or minutes, and an alert that repeats every 5 seconds instead of 5 minutes is a pager storm.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlship.budget_settings import TEAM_LENGTH
from mlship.costs.budgets import COST_METRICS
from mlship.errors import MlshipError, SpecError
from mlship.monitor.drift import Method as DriftMethod
from mlship.monitor.stream_figures import STREAM_METRICS
from mlship.monitor.window import DEFAULT_WINDOW, Window, format_duration, parse_duration
from mlship.spec.stream import load_stream_spec
from mlship.yamlfile import Problem, describe, field_name, parse, read_text

METRIC_GROUPS = ("drift", "quality", "performance", "health", "cost", "stream")
"""The groups every metric name starts with: ``drift.share``, ``health.anomalies``."""

Severity = Literal["info", "warning", "critical"]
Action = Literal["log", "webhook", "retrain"]


class RulesError(MlshipError):
    """The alert rules file is malformed or inconsistent."""


# -- conditions -----------------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(
    r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Condition:
    """A comparison of the measured value with a threshold: ``> 0.3``.

    >>> Condition.parse("> 0.3").holds(0.5)
    True
    """

    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float

    @classmethod
    def parse(cls, text: str | Condition) -> Condition:
        if isinstance(text, Condition):
            return text
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                "expected a comparison and a number, such as '> 0.3' "
                "(one of > >= < <= == !=; quote it: a bare > starts a YAML block)"
            )
        op: Any = match.group(1)
        return cls(op=op, threshold=float(match.group(2)))

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        number = self.threshold
        text = str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
        return f"{self.op} {text}"


# -- the file's shape -----------------------------------------------------------------------------


def _validator(parse: Callable[[Any], Any], kind: str) -> PlainValidator:
    """A pydantic validator from a parse function whose ValueError says what was expected."""

    def validate(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise PydanticCustomError(kind, str(exc)) from None

    return PlainValidator(validate)


def _cooldown(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=parse_duration(value))


WindowField = Annotated[
    Window, _validator(Window.parse, "window"), PlainSerializer(lambda w: w.label)
]
ConditionField = Annotated[
    Condition, _validator(Condition.parse, "condition"), PlainSerializer(str)
]
Cooldown = Annotated[
    timedelta,
    _validator(_cooldown, "duration"),
    PlainSerializer(lambda d: format_duration(d.total_seconds())),
]


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_INCONSISTENT = "inconsistent_rules"
"""The error type of :meth:`RuleSet.problems`; its context keeps each problem's location."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Webhook(_Strict):
    """Where ``webhook`` actions POST their JSON."""

    url: str = Field(description="http:// or https:// address that receives the alerts.")
    timeout_seconds: float = Field(5.0, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError("url", "expected an http:// or https:// address")
        return url


class Rule(_Strict):
    """One alert: when ``metric`` over ``window`` meets ``condition``, run ``actions``."""

    name: str = Field(max_length=200)
    model: str | None = Field(None, min_length=1, max_length=200)
    team: str | None = Field(None, min_length=1, max_length=TEAM_LENGTH)
    """The team whose models' costs a ``cost.*`` rule watches, instead of one model's."""
    stream: str | None = Field(None, min_length=1, max_length=1000)
    """The stream spec (a file, relative to the rules file) whose group and prediction log a
    ``stream.*`` rule reads; absolute once the file is loaded."""
    metric: str = Field(max_length=200)
    window: WindowField = DEFAULT_WINDOW
    condition: ConditionField
    severity: Severity = "warning"
    cooldown: Cooldown = timedelta(hours=1)
    actions: tuple[Action, ...] = Field(("log",), min_length=1)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise PydanticCustomError(
                "name",
                "a rule name is letters, digits, '-', '_' and '.', "
                "and starts with a letter or a digit",
            )
        return name

    @field_validator("metric")
    @classmethod
    def _known_group(cls, metric: str) -> str:
        group, dot, rest = metric.partition(".")
        if group not in METRIC_GROUPS or not dot or not rest:
            raise PydanticCustomError(
                "metric",
                "unknown metric '{name}': a metric name is one of {groups} and then the "
                "measure, such as drift.share",
                {"name": metric, "groups": ", ".join(f"{g}." for g in METRIC_GROUPS)},
            )
        if group == "cost" and metric not in COST_METRICS:
            raise PydanticCustomError(
                "metric",
                "unknown cost metric '{name}': expected one of {known}",
                {"name": metric, "known": ", ".join(COST_METRICS)},
            )
        if group == "stream" and metric not in STREAM_METRICS:
            raise PydanticCustomError(
                "metric",
                "unknown stream metric '{name}': expected one of {known}",
                {"name": metric, "known": ", ".join(STREAM_METRICS)},
            )
        return metric

    @property
    def is_cost(self) -> bool:
        """Whether this rule watches spending (measured from the costs, not the traffic)."""
        return self.metric.startswith("cost.")

    @property
    def is_stream(self) -> bool:
        """Whether this rule watches a stream (read from its broker and its prediction log)."""
        return self.metric.startswith("stream.")

    @property
    def subject(self) -> str:
        """What an alert of this rule is about when it names a team: ``team:growth``."""
        return f"team:{self.team}" if self.team is not None else (self.model or "")

    def applies_to(self, model: str) -> bool:
        return (
            self.team is None
            and self.stream is None
            and not self.is_stream
            and (self.model is None or self.model == model)
        )


class ColumnDriftSetting(_Strict):
    """How one column's drift is judged, instead of the defaults chosen by kind and size."""

    method: DriftMethod | None = None
    threshold: float | None = Field(None, gt=0)


class DriftSettings(_Strict):
    """The ``drift:`` section: the share of drifted columns that makes the dataset drift, and
    per-column methods and thresholds."""

    share: float = Field(0.5, gt=0, le=1)
    columns: dict[str, ColumnDriftSetting] = Field(default_factory=dict)

    @property
    def methods(self) -> dict[str, DriftMethod]:
        return {name: s.method for name, s in self.columns.items() if s.method is not None}

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: s.threshold for name, s in self.columns.items() if s.threshold is not None}


class RuleSet(_Strict):
    """Every rule of a file, the webhook they share and how drift is judged."""

    webhook: Webhook | None = None
    drift: DriftSettings = Field(default_factory=DriftSettings)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        problems = self.problems()
        if problems:
            message = "; ".join(f"{field_name(loc)}: {text}" for loc, text in problems)
            raise PydanticCustomError(
                _INCONSISTENT, "{message}", {"message": message, "problems": problems}
            )
        return self

    def problems(self) -> list[Problem]:
        """What no single field shows: rule names repeated, webhook actions with nowhere to go."""
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                message = f"two rules are called {rule.name!r} (see rules[{seen[rule.name]}])"
                problems.append((("rules", index, "name"), message))
            seen.setdefault(rule.name, index)
            problems.extend(_cost_problems(index, rule))
            problems.extend(_stream_problems(index, rule))
            for position, action in enumerate(rule.actions):
                if action == "webhook" and self.webhook is None:
                    message = "action webhook needs a top-level `webhook:` section with its url"
                    problems.append((("rules", index, "actions", position), message))
                if action in rule.actions[:position]:
                    message = f"action {action} is listed twice"
                    problems.append((("rules", index, "actions", position), message))
        return problems

    def for_model(self, model: str) -> list[Rule]:
        """The rules that watch ``model``: those naming it and those naming no model (nor a
        team)."""
        return [rule for rule in self.rules if rule.applies_to(model)]

    def for_stream(self, stream: str) -> list[Rule]:
        """The rules that watch the stream spec ``stream`` (a path, as the rules give it)."""
        return [rule for rule in self.rules if rule.stream == stream]

    @property
    def streams(self) -> list[str]:
        """The stream specs the rules name, in the order of the file."""
        return list(dict.fromkeys(rule.stream for rule in self.rules if rule.stream is not None))

    def for_team(self, team: str) -> list[Rule]:
        """The rules that watch the costs of ``team``."""
        return [rule for rule in self.rules if rule.team == team]

    @property
    def teams(self) -> list[str]:
        """The teams the rules name, in the order of the file."""
        return list(dict.fromkeys(rule.team for rule in self.rules if rule.team is not None))


def _cost_problems(index: int, rule: Rule) -> list[Problem]:
    """A team is a subject of cost rules only, and spending is measured over time, not rows."""
    problems: list[Problem] = []
    if rule.team is not None and rule.model is not None:
        message = "a rule names a model or a team, not both"
        problems.append((("rules", index, "team"), message))
    if rule.team is not None and not rule.is_cost:
        message = f"only cost.* metrics are measured for a team; {rule.metric} needs a model"
        problems.append((("rules", index, "team"), message))
    if rule.team is not None and "retrain" in rule.actions:
        message = "action retrain needs a model to train; a team's rule cannot retrain"
        problems.append((("rules", index, "actions", rule.actions.index("retrain")), message))
    if rule.is_cost and rule.window.seconds is None:
        message = f"{rule.metric} is measured over a duration (1h, 7d), not over rows"
        problems.append((("rules", index, "window"), message))
    return problems


def _stream_problems(index: int, rule: Rule) -> list[Problem]:
    """A stream's figures are read from its spec's broker and log: the rule must name the spec,
    and nothing else is read from a stream."""
    problems: list[Problem] = []
    if rule.is_stream and rule.stream is None:
        message = (
            f"rule {rule.name!r} watches {rule.metric}, which is read from a stream: name its "
            "stream spec with `stream: FILE` (relative to the rules file)"
        )
        problems.append((("rules", index, "stream"), message))
    if rule.stream is not None and not rule.is_stream:
        message = (
            f"rule {rule.name!r}: only stream.* metrics are read from a stream; "
            f"{rule.metric} needs a model"
        )
        problems.append((("rules", index, "stream"), message))
    if rule.stream is not None and rule.team is not None:
        message = f"rule {rule.name!r} names a stream or a team, not both"
        problems.append((("rules", index, "stream"), message))
    if rule.is_stream and rule.model is None and "retrain" in rule.actions:
        message = f"rule {rule.name!r}: action retrain needs a model to train; name it with model:"
        problems.append((("rules", index, "actions", rule.actions.index("retrain")), message))
    return problems


# -- loading --------------------------------------------------------------------------------------


def parse_rules(text: str, path: Path) -> RuleSet:
    """Validate rules ``text`` (the content of ``path``) or raise :class:`RulesError`."""
    try:
        data, locator = parse(text, path, RulesError)
    except RulesError as exc:
        raise _unquoted_condition(text, path) or exc from None
    if not isinstance(data, dict):
        raise RulesError(f"{path}, line 1: expected a mapping with `rules` (and maybe `webhook`)")
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems: list[Problem] = []
        for error in exc.errors():
            if error["type"] == _INCONSISTENT:
                problems.extend(error["ctx"]["problems"])
            else:
                problems.append((tuple(error["loc"]), describe(error, RuleSet)))
        raise RulesError(locator.errors(problems)) from None
    rules, problems = _with_stream_specs(rules, path.parent)
    if problems:
        raise RulesError(locator.errors(problems))
    return rules


def _with_stream_specs(rules: RuleSet, base: Path) -> tuple[RuleSet, list[Problem]]:
    """``rules`` with each ``stream:`` made absolute (relative to ``base``, the rules file's
    folder), and the specs that do not read, so a typo in a spec is found when the rules are
    loaded rather than at the first pass."""
    problems: list[Problem] = []
    resolved: list[Rule] = []
    read: dict[Path, str | None] = {}
    for index, rule in enumerate(rules.rules):
        if rule.stream is None:
            resolved.append(rule)
            continue
        where = Path(rule.stream).expanduser()
        where = where if where.is_absolute() else (base / where).resolve()
        if where not in read:
            try:
                load_stream_spec(where)
                read[where] = None
            except SpecError as exc:
                read[where] = str(exc)
        if read[where] is not None:
            problems.append((("rules", index, "stream"), f"rule {rule.name!r}: {read[where]}"))
        resolved.append(rule.model_copy(update={"stream": str(where)}))
    return rules.model_copy(update={"rules": tuple(resolved)}), problems


_BARE_CONDITION = re.compile(r"^\s*(?:-\s+)?condition:\s*[>!]")


def _unquoted_condition(text: str, path: Path) -> RulesError | None:
    """The likeliest cause of invalid YAML in a rules file, said plainly: in YAML, a bare ``>``
    starts a folded block and ``!`` a tag, so ``condition: > 0.3`` must be quoted."""
    for number, line in enumerate(text.splitlines(), start=1):
        if _BARE_CONDITION.match(line):
            return RulesError(
                f"{path}, line {number}, field condition: quote the comparison, as in "
                'condition: "> 0.3" (YAML reads a bare > as a folded block and ! as a tag)'
            )
    return None


def load_rules(path: Path | str) -> RuleSet:
    """Read and validate the rules file at ``path``.

    >>> load_rules("rules.yaml").rules[0].window.label  # doctest: +SKIP
    'last 500 rows'
    """
    path = Path(path)
    return parse_rules(read_text(path, "rules file", RulesError), path.resolve())
