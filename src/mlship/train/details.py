"""What a run records of how it chose, typed: :class:`RunDetails` and one record per part of it.

A run's details are stored as JSON (``Run.details``) and read by the command line, the model card
and the evaluation report. Read as a dictionary, every reader repeated the record's keys, and every
key a run did not write in an older version of mlship was a ``KeyError`` waiting in one of them.
Here the shape is declared once: the run builds a :class:`RunDetails`, the store keeps
:meth:`RunDetails.to_json`, and readers take :meth:`RunDetails.from_json` and use attributes.

``from_json`` reads every shape a workspace may hold: a part or key an older run did not record is
``None`` (or empty), never guessed, and ``to_json`` writes only the parts there are, so the record
of a run read and written again is the record that was stored. A value of the wrong type (a
hand-edited or damaged record) is refused with the key it was found under.

Only the standard library and the small record modules are imported: the command line reads
details without loading the training stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, cast, get_args

from mlship.errors import MlshipError
from mlship.spec.training import SplitMethod
from mlship.train.fit_warnings import CaughtWarning
from mlship.train.fitted_on import FittedOn
from mlship.train.split_strategy import SplitStrategy

JSON = dict[str, Any]
T = TypeVar("T")
TimeValue = str | float | int
"""A moment as a run records it: ISO text for dates, the number for a numeric time column."""


class DetailsError(MlshipError):
    """A run's recorded details hold a value of the wrong type."""


class _Fields:
    """The values of one JSON object, each checked for its type, errors naming the key's path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            place = f" {where}:" if where else ""
            raise DetailsError(f"run details:{place} expected an object, got {_kind(data)}")
        self.data = data
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _wrong(self, key: str, expected: str) -> DetailsError:
        value = self.data[key]
        return DetailsError(
            f"run details: {self.path(key)}: expected {expected}, got {_kind(value)} {value!r}"
        )

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self._wrong(key, "text")

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise self._wrong(key, "a whole number")

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise self._wrong(key, "a number")

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self._wrong(key, "true or false")

    def moment(self, key: str) -> TimeValue | None:
        value = self.data.get(key)
        if value is None or (isinstance(value, str | int | float) and not isinstance(value, bool)):
            return value
        raise self._wrong(key, "a date or a number")

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, list | tuple):
            return list(value)
        raise self._wrong(key, "a list")

    def numbers(self, key: str) -> tuple[float, ...]:
        values = self.items(key)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return tuple(float(v) for v in values)
        raise self._wrong(key, "a list of numbers")

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if all(isinstance(v, str) for v in values):
            return tuple(values)
        raise self._wrong(key, "a list of text")

    def part(self, key: str) -> _Fields | None:
        """The object under ``key``; None when it is missing, null or empty."""
        value = self.data.get(key)
        return _Fields(value, self.path(key)) if value else None

    def each(self, key: str) -> list[_Fields]:
        return [_Fields(v, f"{self.path(key)}[{i}]") for i, v in enumerate(self.items(key))]

    def required_text(self, key: str) -> str:
        return _required(self.text(key), self, key)

    def required_integer(self, key: str) -> int:
        return _required(self.integer(key), self, key)

    def required_number(self, key: str) -> float:
        return _required(self.number(key), self, key)


def _required(value: T | None, fields: _Fields, key: str) -> T:
    if value is None:
        raise DetailsError(f"run details: {fields.path(key)} is missing")
    return value


class _Record:
    """A part of the details, read from its JSON object with :meth:`read`."""

    @classmethod
    def read(cls, fields: _Fields) -> Self:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "") -> Self:
        """The part from its JSON object (``where``: its key in the details, for errors)."""
        return cls.read(_Fields(data, where))


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _some(**values: Any) -> JSON:
    """The keys whose value is recorded (not None), in the order given."""
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class SelectionRecord(_Record):
    """The rule that picked the selected candidate from the leaderboard."""

    rule: str
    tolerance: float
    cost: str | None = None
    """Which cost made a candidate the cheapest (None for runs from before it was recorded,
    which all compared training costs)."""
    reason: str | None = None
    """The sentence that says why the selected candidate was picked."""

    def to_json(self) -> JSON:
        return {
            "rule": self.rule,
            "tolerance": self.tolerance,
            **_some(cost=self.cost, reason=self.reason),
        }

    @classmethod
    def read(cls, fields: _Fields) -> SelectionRecord:
        return cls(
            fields.required_text("rule"),
            fields.number("tolerance") or 0.0,
            fields.text("cost"),
            fields.text("reason"),
        )


@dataclass(frozen=True)
class CostsRecord(_Record):
    """One candidate's cost against quality: what serving it costs, its size, the Pareto fronts
    it is on (training, serving, latency) and the teacher it was distilled from."""

    serving_per_1k: float | None = None
    model_bytes: int | None = None
    fronts: tuple[str, ...] = ()
    distilled_from: str | None = None

    def to_json(self) -> JSON:
        return {
            **_some(
                serving_per_1k=self.serving_per_1k,
                model_bytes=self.model_bytes,
                distilled_from=self.distilled_from,
            ),
            "fronts": list(self.fronts),
        }

    @classmethod
    def read(cls, fields: _Fields) -> CostsRecord:
        return cls(
            fields.number("serving_per_1k"),
            fields.integer("model_bytes"),
            fields.texts("fronts"),
            fields.text("distilled_from"),
        )


@dataclass(frozen=True)
class StrategyRecord(_Record):
    """The split strategy in force, and the sentence the run said it in (kept as said: the
    wording of newer versions may differ)."""

    strategy: SplitStrategy
    text: str

    def to_json(self) -> JSON:
        return {**self.strategy.as_dict(), "text": self.text}

    @classmethod
    def read(cls, fields: _Fields) -> StrategyRecord:
        method = fields.required_text("method")
        if method not in get_args(SplitMethod):
            raise DetailsError(
                f"run details: {fields.path('method')}: expected one of "
                f"{', '.join(get_args(SplitMethod))}, got {method!r}"
            )
        strategy = _strategy(fields, cast(SplitMethod, method))
        return cls(strategy, fields.text("text") or strategy.text())


def _strategy(fields: _Fields, method: SplitMethod) -> SplitStrategy:
    return SplitStrategy(
        method=method,
        folds=fields.required_integer("folds"),
        repeats=fields.integer("repeats") or 1,
        holdout=fields.required_number("holdout"),
        train_rows=fields.required_integer("train_rows"),
        test_rows=fields.required_integer("test_rows"),
        group=fields.text("group"),
        time=fields.text("time"),
        stratified_test=bool(fields.flag("stratified_test")),
        stratified_folds=bool(fields.flag("stratified_folds")),
        outer_folds=fields.integer("outer_folds") or 0,
    )


@dataclass(frozen=True)
class SplitRecord(_Record):
    """How the rows were split: counts, the folds, how the test set was scored, the strategy.

    Runs from before the strategy was recorded have none; the earliest recorded only counts.
    """

    train_rows: int | None = None
    test_rows: int | None = None
    folds: int | None = None
    test_scored: str | None = None
    strategy: StrategyRecord | None = None
    outer_folds: int | None = None
    """Nested cross-validation's outer folds (None without nested CV)."""

    def to_json(self) -> JSON:
        strategy = self.strategy.to_json() if self.strategy is not None else None
        return _some(
            train_rows=self.train_rows,
            test_rows=self.test_rows,
            folds=self.folds,
            test_scored=self.test_scored,
            strategy=strategy,
            outer_folds=self.outer_folds,
        )

    @classmethod
    def read(cls, fields: _Fields) -> SplitRecord:
        found = fields.part("strategy")
        return cls(
            train_rows=fields.integer("train_rows"),
            test_rows=fields.integer("test_rows"),
            folds=fields.integer("folds"),
            test_scored=fields.text("test_scored"),
            strategy=StrategyRecord.read(found) if found is not None else None,
            outer_folds=fields.integer("outer_folds"),
        )


@dataclass(frozen=True)
class WeightingRecord(_Record):
    """The sample-weight column and the target transform a run used (None: not used)."""

    sample_weights: str | None = None
    target: str | None = None
    """The target column, recorded with its transform."""
    target_transform: str | None = None

    def to_json(self) -> JSON:
        """Flat in the run's details, as ``sample_weights`` and ``target_transform``."""
        found: JSON = _some(sample_weights=self.sample_weights)
        if self.target_transform is not None:
            found["target_transform"] = {"column": self.target, "transform": self.target_transform}
        return found

    @classmethod
    def read(cls, fields: _Fields) -> WeightingRecord:
        transform = fields.part("target_transform")
        return cls(
            fields.text("sample_weights"),
            transform.text("column") if transform else None,
            transform.required_text("transform") if transform else None,
        )

    def sentences(self) -> list[str]:
        """Sentences saying how the run's weights and target transform shaped its numbers."""
        said = []
        if self.sample_weights is not None:
            said.append(
                f"Sample weights from column {self.sample_weights}: every fit and every "
                "metric (CV and test) is weighted."
            )
        if self.target_transform is not None:
            said.append(
                f"Target {self.target} learnt as {self.target_transform}: predictions and "
                "metrics are in its own units."
            )
        return said


@dataclass(frozen=True)
class ThresholdRecord(_Record):
    """The decision threshold tuned on the CV folds, and the CV score before and after."""

    metric: str
    threshold: float
    cv_score_at_default: float
    """At the default threshold of 0.5."""
    cv_score_tuned: float

    def to_json(self) -> JSON:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "cv_score_at_0.5": self.cv_score_at_default,
            "cv_score_tuned": self.cv_score_tuned,
        }

    @classmethod
    def read(cls, fields: _Fields) -> ThresholdRecord:
        return cls(
            fields.required_text("metric"),
            fields.required_number("threshold"),
            fields.required_number("cv_score_at_0.5"),
            fields.required_number("cv_score_tuned"),
        )


@dataclass(frozen=True)
class NestedRecord(_Record):
    """One candidate's nested cross-validation estimate: its outer-fold scores, and the
    parameters each outer fold's tuning chose (empty for a candidate without a search)."""

    metric: str
    mean: float
    std: float
    scores: tuple[float, ...]
    params: tuple[dict[str, Any], ...]
    tuned: bool
    cpu_seconds: float

    def to_json(self) -> JSON:
        return {
            "metric": self.metric,
            "mean": self.mean,
            "std": self.std,
            "scores": list(self.scores),
            "params": [dict(p) for p in self.params],
            "tuned": self.tuned,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def read(cls, fields: _Fields) -> NestedRecord:
        params = tuple(dict(p.data) for p in fields.each("params"))
        tuned = fields.flag("tuned")
        return cls(
            fields.required_text("metric"),
            _number_or_nan(fields.number("mean")),
            _number_or_nan(fields.number("std")),
            fields.numbers("scores"),
            params,
            any(params) if tuned is None else tuned,
            fields.number("cpu_seconds") or 0.0,
        )

    def summary(self, outer_folds: int | None) -> str:
        """``0.8123 ± 0.0110 roc_auc over 5 outer folds, tuned inside each``, for reports."""
        how = "tuned inside each" if self.tuned else "no tuning"
        return (
            f"{self.mean:.4f} ± {self.std:.4f} {self.metric} over {outer_folds} outer folds, {how}"
        )


def _number_or_nan(value: float | None) -> float:
    return math.nan if value is None else value


@dataclass(frozen=True)
class SuspectRecord(_Record):
    """One column a leakage test found suspect, with the figure that decided it."""

    column: str
    test: str
    measure: str
    figure: float
    threshold: float
    sentence: str

    def to_json(self) -> JSON:
        return {
            "column": self.column,
            "test": self.test,
            "measure": self.measure,
            "figure": self.figure,
            "threshold": self.threshold,
            "sentence": self.sentence,
        }

    @classmethod
    def read(cls, fields: _Fields) -> SuspectRecord:
        return cls(
            fields.required_text("column"),
            fields.required_text("test"),
            fields.text("measure") or "",
            fields.required_number("figure"),
            fields.required_number("threshold"),
            fields.text("sentence") or "",
        )


@dataclass(frozen=True)
class LeakageRecord(_Record):
    """What screening the features for target leakage found (``mode: off``: nothing done)."""

    mode: str
    allowed: tuple[str, ...] = ()
    screened: int = 0
    """How many features were screened."""
    suspects: tuple[SuspectRecord, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> JSON:
        return {
            "mode": self.mode,
            "allowed": list(self.allowed),
            "screened": self.screened,
            "suspects": [s.to_json() for s in self.suspects],
            "seconds": self.seconds,
        }

    @classmethod
    def read(cls, fields: _Fields) -> LeakageRecord:
        return cls(
            fields.required_text("mode"),
            fields.texts("allowed"),
            fields.integer("screened") or 0,
            tuple(SuspectRecord.read(s) for s in fields.each("suspects")),
            fields.number("seconds") or 0.0,
        )


@dataclass(frozen=True)
class ScoredModelRecord:
    """The model a refitting run scored on its test set, kept in the artifact store: its
    checksum and its seal (empty when a tracking server's client stored it)."""

    sha256: str
    signature: str | None = None

    def to_json(self) -> JSON:
        return {"sha256": self.sha256, "signature": self.signature}


@dataclass(frozen=True)
class RefitRecord(_Record):
    """What the shipped model was fitted on, and the scored model when that is another."""

    fitted_on: FittedOn
    scored_model: ScoredModelRecord | None = None

    def to_json(self) -> JSON:
        found = self.fitted_on.as_dict()
        if self.scored_model is not None:
            found["scored_model"] = self.scored_model.to_json()
        return found

    @classmethod
    def read(cls, fields: _Fields) -> RefitRecord:
        fitted_on = FittedOn(
            fields.required_text("on"), fields.required_integer("rows"), fields.moment("up_to")
        )
        kept = fields.part("scored_model")
        scored = None
        if kept is not None:
            scored = ScoredModelRecord(kept.required_text("sha256"), kept.text("signature"))
        return cls(fitted_on, scored)


@dataclass(frozen=True)
class SpanRecord(_Record):
    """The first and last time of a block of rows, and how many rows it has."""

    start: TimeValue | None
    end: TimeValue | None
    rows: int

    def to_json(self) -> JSON:
        return {"from": self.start, "to": self.end, "rows": self.rows}

    @classmethod
    def read(cls, fields: _Fields) -> SpanRecord:
        return cls(fields.moment("from"), fields.moment("to"), fields.integer("rows") or 0)


@dataclass(frozen=True)
class ErrorsRecord(_Record):
    """How a model erred on a block in time order: level, size and trend of the errors."""

    level: float | None
    size: float | None
    trend: float | None

    def to_json(self) -> JSON:
        return {"level": self.level, "size": self.size, "trend": self.trend}

    @classmethod
    def read(cls, fields: _Fields) -> ErrorsRecord:
        return cls(fields.number("level"), fields.number("size"), fields.number("trend"))


@dataclass(frozen=True)
class BacktestRowRecord(_Record):
    """One time fold (or the test set): the span trained on, the span scored, the results."""

    label: str
    train: SpanRecord
    validation: SpanRecord
    score: float | None
    train_score: float | None
    errors: ErrorsRecord

    def to_json(self) -> JSON:
        return {
            "label": self.label,
            "train": self.train.to_json(),
            "validation": self.validation.to_json(),
            "score": self.score,
            "train_score": self.train_score,
            "errors": self.errors.to_json(),
        }

    @classmethod
    def read(cls, fields: _Fields) -> BacktestRowRecord:
        def part(key: str) -> _Fields:
            return fields.part(key) or _Fields({}, fields.path(key))

        return cls(
            fields.required_text("label"),
            SpanRecord.read(part("train")),
            SpanRecord.read(part("validation")),
            fields.number("score"),
            fields.number("train_score"),
            ErrorsRecord.read(part("errors")),
        )


@dataclass(frozen=True)
class BacktestRecord(_Record):
    """A time-ordered run's backtest: every time fold, oldest first, then the test set."""

    time: str
    metric: str
    errors: str
    """``residual`` (a regressor's) or ``error rate`` (a classifier's)."""
    rows: tuple[BacktestRowRecord, ...]
    test_set: str
    """The sentence saying which rows the test set is."""

    def to_json(self) -> JSON:
        return {
            "time": self.time,
            "metric": self.metric,
            "errors": self.errors,
            "rows": [row.to_json() for row in self.rows],
            "test_set": self.test_set,
        }

    @classmethod
    def read(cls, fields: _Fields) -> BacktestRecord:
        return cls(
            fields.required_text("time"),
            fields.required_text("metric"),
            fields.text("errors") or "",
            tuple(BacktestRowRecord.read(row) for row in fields.each("rows")),
            fields.text("test_set") or "",
        )


@dataclass(frozen=True)
class InferredRecord:
    """A column the spec does not declare, typed by inference (``columns: infer: true``)."""

    name: str
    type: str
    role: str

    def to_json(self) -> JSON:
        return {"name": self.name, "type": self.type, "role": self.role}


@dataclass(frozen=True)
class UndeclaredRecord(_Record):
    """What became of the columns of the sources the spec does not declare, as the run's
    details, the data report and a validation summary record it."""

    left_out: tuple[str, ...] = ()
    inferred: tuple[InferredRecord, ...] = ()

    def to_json(self) -> JSON:
        return {"left_out": list(self.left_out), "inferred": [c.to_json() for c in self.inferred]}

    @classmethod
    def read(cls, fields: _Fields) -> UndeclaredRecord:
        inferred = tuple(
            InferredRecord(c.required_text("name"), c.text("type") or "", c.text("role") or "")
            for c in fields.each("inferred")
        )
        return cls(fields.texts("left_out"), inferred)


Warnings = dict[str, tuple[CaughtWarning, ...]]
"""The library warnings fitting raised, per candidate, each kind once with its count."""


def _warnings(fields: _Fields) -> Warnings:
    found: Warnings = {}
    for name in fields.data:
        kinds = fields.each(str(name))
        found[str(name)] = tuple(
            CaughtWarning(k.required_text("category"), k.text("message") or "", _count(k))
            for k in kinds
        )
    return found


def _count(fields: _Fields) -> int:
    return fields.integer("count") or 0


@dataclass(frozen=True)
class RunDetails:
    """What a run records of how it chose; a part the run did not record is None.

    ``warnings`` and ``undeclared`` are None only for runs from before they were recorded (a run
    records them even when empty), so that reading and writing a record gives it back as it was.
    """

    selection: SelectionRecord | None = None
    split: SplitRecord | None = None
    executor: str | None = None
    weighting: WeightingRecord = field(default_factory=WeightingRecord)
    warnings: Warnings | None = None
    undeclared: UndeclaredRecord | None = None
    nested: dict[str, NestedRecord] | None = None
    threshold: ThresholdRecord | None = None
    leakage: LeakageRecord | None = None
    refit: RefitRecord | None = None
    backtest: BacktestRecord | None = None
    report: str | None = None
    """The path of the run's HTML evaluation report."""
    costs: dict[str, CostsRecord] | None = None
    """Per candidate, its cost against quality (None for runs from before it was recorded)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RunDetails:
        """The details of a run as stored (None or ``{}`` for a run that recorded none)."""
        fields = _Fields(data or {}, "")

        part = fields.part
        selection, split, warnings = part("selection"), part("split"), part("warnings")
        undeclared, nested, threshold = part("undeclared"), part("nested"), part("threshold")
        leakage, refit, backtest = part("leakage"), part("refit"), part("backtest")
        costs = part("costs")
        return cls(
            selection=SelectionRecord.read(selection) if selection else None,
            split=SplitRecord.read(split) if split else None,
            executor=fields.text("executor"),
            weighting=WeightingRecord.read(fields),
            warnings=_read_or_empty(fields, "warnings", warnings, _warnings),
            undeclared=_read_or_empty(fields, "undeclared", undeclared, UndeclaredRecord.read),
            nested=(
                {
                    str(n): NestedRecord.read(_Fields(v, f"nested.{n}"))
                    for n, v in nested.data.items()
                }
                if nested
                else None
            ),
            threshold=ThresholdRecord.read(threshold) if threshold else None,
            leakage=LeakageRecord.read(leakage) if leakage else None,
            refit=RefitRecord.read(refit) if refit else None,
            backtest=BacktestRecord.read(backtest) if backtest else None,
            report=fields.text("report"),
            costs=(
                {str(n): CostsRecord.read(_Fields(v, f"costs.{n}")) for n, v in costs.data.items()}
                if costs
                else None
            ),
        )

    def to_json(self) -> JSON:
        """As stored with the run: plain JSON values, only the parts recorded."""
        found: JSON = _some(
            selection=self.selection.to_json() if self.selection else None,
            split=self.split.to_json() if self.split else None,
            executor=self.executor,
        )
        found.update(self.weighting.to_json())
        if self.warnings is not None:
            found["warnings"] = {
                name: [w.as_dict() for w in kinds] for name, kinds in self.warnings.items()
            }
        if self.undeclared is not None:
            found["undeclared"] = self.undeclared.to_json()
        if self.nested is not None:
            found["nested"] = {name: n.to_json() for name, n in self.nested.items()}
        found.update(
            _some(
                threshold=self.threshold.to_json() if self.threshold else None,
                leakage=self.leakage.to_json() if self.leakage else None,
                refit=self.refit.to_json() if self.refit else None,
                backtest=self.backtest.to_json() if self.backtest else None,
                report=self.report,
            )
        )
        if self.costs is not None:
            found["costs"] = {name: c.to_json() for name, c in self.costs.items()}
        return found

    @property
    def fitted_on(self) -> FittedOn | None:
        """What the shipped model was fitted on; runs from before refitting shipped the model
        fitted on the training part, which their split records (None when nothing is)."""
        return FittedOn.shipped(
            self.refit.fitted_on if self.refit is not None else None,
            self.split.train_rows if self.split is not None else None,
        )

    def nested_of(self, candidate: str) -> NestedRecord | None:
        """``candidate``'s nested CV estimate, when the run made one."""
        return (self.nested or {}).get(candidate)

    def nested_summary(self, candidate: str) -> str | None:
        """``candidate``'s nested CV estimate in words, when the run made one."""
        found = self.nested_of(candidate)
        outer = self.split.outer_folds if self.split else None
        return None if found is None else found.summary(outer)


def _read_or_empty(
    fields: _Fields, key: str, found: _Fields | None, read: Callable[[_Fields], T]
) -> T | None:
    """A part a run records even when empty: read it, empty when recorded empty, None when the
    run is older than the part."""
    if fields.data.get(key) is None:
        return None
    return read(found or _Fields({}, fields.path(key)))


__all__ = [
    "BacktestRecord",
    "BacktestRowRecord",
    "CostsRecord",
    "DetailsError",
    "ErrorsRecord",
    "InferredRecord",
    "LeakageRecord",
    "NestedRecord",
    "RefitRecord",
    "RunDetails",
    "ScoredModelRecord",
    "SelectionRecord",
    "SpanRecord",
    "SplitRecord",
    "StrategyRecord",
    "SuspectRecord",
    "ThresholdRecord",
    "UndeclaredRecord",
    "Warnings",
    "WeightingRecord",
]
