"""Spec models of the training side: search spaces, splits, tuning, imbalance, selection.

Like ``mlship.spec.data``, these classes only say what is valid; behaviour lives in
``mlship.train.*``. Every option has a default that a careful practitioner would pick, so a spec
that names only its models still trains honestly (stratified k-fold, a holdout scored once).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from mlship.spec.data import Strict

SplitMethod = Literal["kfold", "stratified_kfold", "group_kfold", "timeseries", "holdout"]
TuningMethod = Literal["grid", "random", "bayes"]
Pruner = Literal["median", "halving", "none"]
Resampling = Literal["none", "class_weight", "oversample", "undersample", "smote", "adasyn"]
LeakageMode = Literal["warn", "fail", "off"]


class IntRange(Strict):
    """Whole numbers from ``low`` to ``high`` (inclusive); ``log`` samples on a log scale."""

    bounds: tuple[int, int] = Field(alias="int")
    log: bool = False
    step: int = Field(1, ge=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        low, high = self.bounds
        if low > high:
            raise ValueError(f"int range [{low}, {high}] is empty: low must be <= high")
        if self.log and low < 1:
            raise ValueError("a log-scale int range must start at 1 or more")
        if self.log and self.step != 1:
            raise ValueError("a log-scale int range cannot have a step")
        return self


class FloatRange(Strict):
    """Real numbers from ``low`` to ``high``; ``log`` samples on a log scale."""

    bounds: tuple[float, float] = Field(alias="float")
    log: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        low, high = self.bounds
        if low >= high:
            raise ValueError(f"float range [{low}, {high}] is empty: low must be < high")
        if self.log and low <= 0:
            raise ValueError("a log-scale float range must start above 0")
        return self


class Choice(Strict):
    """One of the listed values (numbers, strings, booleans or null)."""

    choice: list[Any] = Field(min_length=1)


Dimension = IntRange | FloatRange | Choice


Space = dict[str, Dimension | list[Any]]
"""Hyper-parameter -> its range or choices (a plain list is a choice)."""


class Split(Strict):
    """How data is divided: a test set scored once at the end, cross-validation on the rest."""

    method: SplitMethod | None = Field(
        None,
        description="stratified_kfold for classification and kfold for regression when unset; "
        "group_kfold keeps each `group` in one fold; timeseries trains on the past only.",
    )
    holdout: float = Field(0.2, gt=0.0, lt=0.9, description="Share of rows kept as the test set.")
    folds: int = Field(5, ge=2, le=50, description="Cross-validation folds (time series folds).")
    repeats: int = Field(1, ge=1, le=20, description="Repeat k-fold with reshuffled folds.")
    nested: bool = Field(
        False, description="Also estimate the tuned model's score with an outer CV loop."
    )
    group: str | None = Field(None, description="Column whose values never span two folds.")
    time: str | None = Field(None, description="Column that orders rows (timeseries).")
    seed: int = Field(42, description="Seed of every shuffle: the same rows split the same way.")
    stratify: bool = Field(True, description="Keep class proportions in the test split.")

    @model_validator(mode="after")
    def _inputs(self) -> Split:
        if self.method == "group_kfold" and not self.group:
            raise ValueError("split method group_kfold needs `group`: the grouping column")
        if self.method == "timeseries" and not self.time:
            raise ValueError("split method timeseries needs `time`: the column that orders rows")
        if self.method in ("timeseries", "holdout") and self.repeats > 1:
            raise ValueError(f"split method {self.method} cannot be repeated")
        return self


class SampleFirst(Strict):
    """Score every candidate on a stratified sample of the training rows first, keep the best
    share, grow the sample, and confirm the last survivors on all rows with the usual folds.

    Most points of a search are plainly worse than the best, and a small sample says so for a
    fraction of the cost; only the close contenders need every row."""

    fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="Share of the training rows the first stage scores every candidate on; each "
        "later stage uses 1/keep times as many rows, until the next would use them all.",
    )
    keep: float = Field(
        0.33,
        gt=0,
        lt=1,
        description="Share of a stage's candidates (at least one, rounded up) that go on to "
        "the next stage, and finally to the full cross-validation.",
    )
    folds: int = Field(
        2,
        ge=1,
        le=100,
        description="How many of the run's folds (the first ones; all when there are fewer) a "
        "screening stage fits and scores each point on. Every fit costs a fixed part whatever "
        "its rows, so screening on every fold costs most of what it saves.",
    )


class Tuning(Strict):
    """Hyper-parameter search for every candidate that has a `search`, within budgets."""

    method: TuningMethod = "bayes"
    trials: int = Field(
        30,
        ge=1,
        le=100_000,
        description="Most trials per candidate. A grid with more points than this is visited "
        "in an order shuffled by `seed` and cut at `trials`.",
    )
    max_seconds: float | None = Field(None, gt=0, description="Wall-clock budget per candidate.")
    max_cost: float | None = Field(None, gt=0, description="Money budget per candidate.")
    pruner: Pruner = Field("median", description="Stop trials whose early folds lag.")
    batch: int = Field(
        4,
        ge=1,
        le=256,
        description="Trials evaluated together. Fixed by the spec, not the machine, so a search "
        "makes the same choices on a laptop and on a cluster.",
    )
    grid_points: int = Field(
        4,
        ge=2,
        le=50,
        description="Values per range in a grid search (log-spaced on a log scale; whole "
        "numbers without repeats); choices are taken as they are.",
    )
    seed: int = Field(42, description="Seed of the sampler and of the order of a cut grid.")
    sample_first: SampleFirst | None = Field(
        None,
        description="Screen the candidates on growing samples of the rows before the full "
        "cross-validation (grid and random searches).",
    )

    @model_validator(mode="after")
    def _sample_first_needs_known_points(self) -> Tuning:
        if self.sample_first is not None and self.method == "bayes":
            raise ValueError(
                "tuning.sample_first screens a set of points chosen up front: use method grid "
                "or random (bayes picks each point from the scores of the ones before)"
            )
        return self


class Threshold(Strict):
    """Tune the decision threshold of a binary classifier on out-of-fold predictions."""

    metric: str = Field("f1", description="The metric the threshold maximises.")


class Imbalance(Strict):
    """How a skewed target is handled; resampling happens inside each training fold only."""

    strategy: Resampling = "none"
    ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Minority/majority ratio after resampling (imbalanced-learn's "
        "sampling_strategy); fully balanced when unset.",
    )
    threshold: Threshold | None = None


class Selection(Strict):
    """How the winner is picked from the leaderboard."""

    rule: Literal["best", "cheapest_within"] = "best"
    tolerance: float = Field(
        0.01,
        ge=0,
        description="cheapest_within: the cheapest candidate whose score is at most this far "
        "from the best (in the metric's units).",
    )
    cost: Literal["training", "serving", "latency"] = Field(
        "training",
        description="cheapest_within: which cost makes a candidate the cheapest: training (what "
        "fitting it cost), serving (what 1,000 single-row predictions cost) or latency (the "
        "median time of one prediction).",
    )


class Leakage(Strict):
    """Screening features for target leakage: a column that gives the answer away before the
    model has learned anything. Written ``leakage: warn`` (or ``fail``, ``off``), or as a mapping
    when some columns are known to be fine: ``leakage: {mode: warn, allow: [balance]}``."""

    mode: LeakageMode = Field(
        "warn",
        description="warn: the run goes on, says which column is suspect and withholds the "
        "'good fit' verdict; fail: the run stops before training; off: no screening.",
    )
    allow: list[str] = Field(
        default_factory=list,
        description="Feature columns known to be available at prediction time; never flagged.",
    )

    @model_validator(mode="before")
    @classmethod
    def _mode_alone(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value


__all__ = [
    "Choice",
    "Dimension",
    "FloatRange",
    "Imbalance",
    "IntRange",
    "Leakage",
    "SampleFirst",
    "Selection",
    "Space",
    "Split",
    "Threshold",
    "Tuning",
]
