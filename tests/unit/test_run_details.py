"""A run's details as typed records: every shape a workspace holds reads, and writes back as it was.

The fixture ``churn_run_details.json`` is the details of a run of the churn example (``mlship
quickstart``) as the version before the typed records stored them; the older shapes below are
the ones earlier versions wrote (counts only, no strategy, no refit, no warnings).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.evaluation.backtest import Backtest, BacktestRow, Errors, Span
from mlship.spec.training import SplitMethod
from mlship.train.cost import Usage
from mlship.train.details import (
    BacktestRecord,
    BacktestRowRecord,
    CostsRecord,
    DetailsError,
    ErrorsRecord,
    InferredRecord,
    LeakageRecord,
    NestedRecord,
    RefitRecord,
    RunDetails,
    ScoredModelRecord,
    SelectionRecord,
    SpanRecord,
    SplitRecord,
    StrategyRecord,
    SuspectRecord,
    ThresholdRecord,
    UndeclaredRecord,
    WeightingRecord,
)
from mlship.train.fit_warnings import CaughtWarning
from mlship.train.fitted_on import FittedOn
from mlship.train.leakage import Screening, Suspect
from mlship.train.nested import NestedScore
from mlship.train.split_strategy import SplitStrategy

CHURN = Path(__file__).parent.parent / "fixtures" / "churn_run_details.json"
TEST_SCORED = "once, by the selected model, after selection"
BOUNDED = settings(derandomize=True, max_examples=80, deadline=None)


def test_a_churn_run_reads_as_it_was_recorded_and_writes_back_unchanged() -> None:
    stored = json.loads(CHURN.read_text())
    details = RunDetails.from_json(stored)

    assert details.selection == SelectionRecord("best", 0.01)
    assert details.executor == "process"
    split = details.split
    assert split is not None and (split.train_rows, split.test_rows, split.folds) == (4792, 1198, 5)
    assert split.test_scored == TEST_SCORED and split.outer_folds is None
    assert split.strategy is not None
    assert split.strategy.strategy.method == "stratified_kfold"
    assert split.strategy.strategy.stratified_test and split.strategy.strategy.stratified_folds
    assert split.strategy.text == "split: stratified 5-fold, test = stratified 20% (1198 rows)"
    assert details.threshold is not None and details.threshold.metric == "f1"
    assert details.threshold.cv_score_tuned > details.threshold.cv_score_at_default
    assert details.leakage == LeakageRecord("warn", (), 9, (), 0.1033)
    assert details.undeclared == UndeclaredRecord(("snapshot_at_support",), ())
    assert details.warnings == {}
    assert details.fitted_on == FittedOn("all", 5990, None)
    assert details.refit is not None and details.refit.scored_model is not None
    assert details.refit.scored_model.sha256 == stored["refit"]["scored_model"]["sha256"]
    assert details.refit.scored_model.signature is not None
    assert details.refit.scored_model.signature.startswith("hmac-sha256:")
    assert details.nested is None and details.backtest is None
    assert details.weighting == WeightingRecord() and details.weighting.sentences() == []
    assert details.report is not None and details.report.endswith(".html")

    assert details.to_json() == stored
    assert json.loads(json.dumps(details.to_json())) == stored


EARLIEST = {
    "selection": {"rule": "cheapest_within", "tolerance": 0.02},
    "split": {"train_rows": 80, "test_rows": 20, "folds": 5, "test_scored": TEST_SCORED},
    "executor": "inline",
    "threshold": {
        "metric": "f1",
        "threshold": 0.4,
        "cv_score_at_0.5": 0.5,
        "cv_score_tuned": 0.6,
    },
}
WITH_NESTED = {
    "selection": {"rule": "best", "tolerance": 0.01},
    "split": {
        "train_rows": 400,
        "test_rows": 100,
        "folds": 3,
        "test_scored": TEST_SCORED,
        "outer_folds": 4,
    },
    "executor": "process",
    "nested": {
        "gbm": {
            "metric": "roc_auc",
            "mean": 0.8123,
            "std": 0.011,
            "scores": [0.8, 0.81, 0.82, 0.8192],
            "params": [{"max_depth": 3}, {"max_depth": 2}, {"max_depth": 3}, {"max_depth": 3}],
            "tuned": True,
            "cpu_seconds": 12.5,
        }
    },
    "report": "/home/someone/.mlship/reports/p-run-12345678.html",
}


def test_the_earliest_details_read_with_what_they_recorded_and_nothing_else() -> None:
    details = RunDetails.from_json(EARLIEST)
    assert details.selection == SelectionRecord("cheapest_within", 0.02)
    assert details.split == SplitRecord(80, 20, 5, TEST_SCORED)
    assert details.threshold == ThresholdRecord("f1", 0.4, 0.5, 0.6)
    # Parts the run did not record are not made up.
    assert details.warnings is None and details.undeclared is None and details.leakage is None
    assert details.refit is None and details.report is None and details.nested is None
    # Before refitting, the shipped model was the one fitted on the training part.
    assert details.fitted_on == FittedOn("train", 80)
    assert details.to_json() == EARLIEST


def test_details_with_nested_cv_say_the_estimate_with_the_outer_folds() -> None:
    details = RunDetails.from_json(WITH_NESTED)
    assert details.nested_summary("gbm") == (
        "0.8123 ± 0.0110 roc_auc over 4 outer folds, tuned inside each"
    )
    assert details.nested_summary("lr") is None
    found = details.nested_of("gbm")
    assert found is not None and found.params[1] == {"max_depth": 2}
    assert details.to_json() == WITH_NESTED


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, RunDetails()),
        ({}, RunDetails()),
        # Counts only: what the model card and FittedOn read from the first runs.
        ({"split": {"train_rows": 80, "test_rows": 20}}, RunDetails(split=SplitRecord(80, 20))),
        # A run that reused a dataset ingested before undeclared columns were listed.
        (
            {"undeclared": {}, "warnings": {}},
            RunDetails(warnings={}, undeclared=UndeclaredRecord()),
        ),
        # A refit recorded without the scored model (a run against a tracking server).
        (
            {"refit": {"on": "all", "rows": 10, "up_to": None, "scored_model": {}}},
            RunDetails(refit=RefitRecord(FittedOn("all", 10, None))),
        ),
        # A strategy from before repeats and nested CV were part of it: their defaults.
        (
            {"split": {"strategy": {"method": "kfold", "folds": 5, "holdout": 0.2,
                                    "train_rows": 8, "test_rows": 2, "text": "split: 5-fold"}}},
            RunDetails(split=SplitRecord(strategy=StrategyRecord(
                SplitStrategy("kfold", 5, 1, 0.2, 8, 2), "split: 5-fold"))),
        ),
    ],
)  # fmt: skip
def test_older_shapes_read_with_defaults_for_what_they_lack(
    stored: dict[str, Any] | None, expected: RunDetails
) -> None:
    assert RunDetails.from_json(stored) == expected


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"split": {"test_rows": "many"}}, "split.test_rows: expected a whole number, got str"),
        ({"split": ["train", "test"]}, "split: expected an object, got list"),
        ({"selection": {"tolerance": 0.1}}, "selection.rule is missing"),
        ({"nested": {"gbm": {"metric": "r2", "scores": [0.5, "x"]}}}, "nested.gbm.scores"),
        (
            {
                "leakage": {
                    "mode": "warn",
                    "suspects": [{"column": "c", "test": "t", "figure": True}],
                }
            },
            "leakage.suspects[0].figure: expected a number, got bool True",
        ),
        (
            {"leakage": {"mode": "warn", "suspects": [{"column": "c", "figure": 0.99}]}},
            "leakage.suspects[0].test is missing",
        ),
        (
            {"split": {"strategy": {"method": "random", "folds": 5}}},
            "split.strategy.method: expected one of kfold, stratified_kfold, ",
        ),
        ({"warnings": {"lr": [{"count": 2}]}}, "warnings.lr[0].category is missing"),
        (
            {"refit": {"on": "all", "rows": 10, "up_to": [2024, 1, 1]}},
            "refit.up_to: expected a date or a number, got list",
        ),
        (
            {"threshold": {"metric": "f1", "threshold": "0.5"}},
            "threshold.threshold: expected a number, got str '0.5'",
        ),
    ],
)
def test_a_damaged_record_is_refused_naming_the_key(stored: dict[str, Any], message: str) -> None:
    with pytest.raises(DetailsError, match=r"^run details: ") as raised:
        RunDetails.from_json(stored)
    assert message in str(raised.value)


# -- generated details ------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8"), max_size=12)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=32)
counts = st.integers(0, 10**6)
optional = st.none
moments = st.one_of(st.none(), names, counts, numbers)
json_leaves = st.one_of(st.none(), st.booleans(), counts, numbers, names)
params = st.dictionaries(names, json_leaves, max_size=3)


@st.composite
def strategies(draw: st.DrawFn) -> StrategyRecord:
    strategy = SplitStrategy(
        method=draw(st.sampled_from(get_args(SplitMethod))),
        folds=draw(st.integers(1, 20)),
        repeats=draw(st.integers(1, 5)),
        holdout=draw(st.floats(0.01, 0.9)),
        train_rows=draw(counts),
        test_rows=draw(counts),
        group=draw(st.none() | names),
        time=draw(st.none() | names),
        stratified_test=draw(st.booleans()),
        stratified_folds=draw(st.booleans()),
        outer_folds=draw(st.integers(0, 10)),
    )
    return StrategyRecord(strategy, draw(st.just(strategy.text()) | names.filter(bool)))


spans = st.builds(SpanRecord, moments, moments, counts)
scores = optional() | numbers
errors = st.builds(ErrorsRecord, optional() | numbers, optional() | numbers, optional() | numbers)
backtests = st.builds(
    BacktestRecord,
    names,
    names,
    st.sampled_from(["residual", "error rate"]),
    st.lists(
        st.builds(BacktestRowRecord, names, spans, spans, scores, scores, errors),
        max_size=4,
    ).map(tuple),
    names,
)
suspects = st.builds(SuspectRecord, names, names, names, numbers, numbers, names)
details_strategy = st.builds(
    RunDetails,
    selection=optional()
    | st.builds(SelectionRecord, names, numbers)
    | st.builds(SelectionRecord, names, numbers, names, optional() | names),
    split=optional()
    | st.builds(
        SplitRecord,
        optional() | counts,
        optional() | counts,
        optional() | st.integers(1, 20),
        optional() | names,
        optional() | strategies(),
        optional() | st.integers(1, 10),
    ).filter(lambda split: bool(split.to_json())),  # a run records a split with something in it
    executor=optional() | names,
    weighting=st.one_of(
        st.builds(WeightingRecord, optional() | names),
        st.builds(WeightingRecord, optional() | names, names, st.sampled_from(["log", "log1p"])),
    ),
    warnings=optional()
    | st.dictionaries(
        names,
        st.lists(st.builds(CaughtWarning, names, names, st.integers(1, 99)), max_size=3).map(tuple),
        max_size=3,
    ),
    undeclared=optional()
    | st.builds(
        UndeclaredRecord,
        st.lists(names, max_size=3).map(tuple),
        st.lists(st.builds(InferredRecord, names, names, names), max_size=3).map(tuple),
    ),
    nested=optional()
    | st.dictionaries(
        names,
        st.builds(
            NestedRecord,
            names,
            numbers,
            numbers,
            st.lists(numbers, max_size=5).map(tuple),
            st.lists(params, max_size=5).map(tuple),
            st.booleans(),
            numbers,
        ),
        min_size=1,
        max_size=3,
    ),
    threshold=optional() | st.builds(ThresholdRecord, names, numbers, numbers, numbers),
    leakage=optional()
    | st.builds(
        LeakageRecord,
        names,
        st.lists(names, max_size=3).map(tuple),
        counts,
        st.lists(suspects, max_size=3).map(tuple),
        numbers,
    ),
    refit=optional()
    | st.builds(
        RefitRecord,
        st.builds(FittedOn, st.sampled_from(["all", "train"]), counts, moments),
        optional() | st.builds(ScoredModelRecord, names, optional() | names),
    ),
    backtest=optional() | backtests,
    report=optional() | names,
    costs=optional()
    | st.dictionaries(
        names,
        st.builds(
            CostsRecord,
            optional() | numbers,
            optional() | counts,
            st.lists(st.sampled_from(["training", "serving", "latency"]), max_size=3).map(tuple),
            optional() | names,
        ),
        min_size=1,  # a run records every candidate's, and it has one at least
        max_size=3,
    ),
)


@BOUNDED
@given(details_strategy)
def test_any_details_survive_a_round_trip_through_stored_json(details: RunDetails) -> None:
    stored = json.loads(json.dumps(details.to_json()))
    assert RunDetails.from_json(stored) == details
    assert RunDetails.from_json(stored).to_json() == stored


# -- what the run's steps write reads back exactly ----------------------------------------------


@BOUNDED
@given(strategies())
def test_a_split_strategy_as_the_run_writes_it_reads_back(found: StrategyRecord) -> None:
    written = found.strategy.as_dict()
    record = StrategyRecord.from_json(written)
    assert record == StrategyRecord(found.strategy, found.strategy.text())
    assert record.to_json() == written


@BOUNDED
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=5),
    st.booleans(),
    st.floats(0, 100),
)
def test_a_nested_estimate_as_the_run_writes_it_reads_back(
    scores: list[float], tuned: bool, cpu: float
) -> None:
    params: list[dict[str, Any]] = [{"alpha": s} if tuned else {} for s in scores]
    written = NestedScore("c", "r2", scores, params, Usage(1.0, cpu, 10)).as_dict()
    record = NestedRecord.from_json(written)
    assert record.tuned is tuned and record.to_json() == written
    assert math.isclose(record.mean, sum(scores) / len(scores), abs_tol=1e-12)


@BOUNDED
@given(
    st.sampled_from(["warn", "fail", "off"]),
    st.lists(names, max_size=3),
    st.lists(st.builds(Suspect, names, st.just("deterministic mapping"), names, numbers,
                       numbers, names), max_size=3),
)  # fmt: skip
def test_a_leakage_screening_as_the_run_writes_it_reads_back(
    mode: str, allowed: list[str], found: list[Suspect]
) -> None:
    written = Screening(mode, tuple(allowed), ("a", "b"), tuple(found), 0.12345).as_dict()
    assert LeakageRecord.from_json(written).to_json() == written


@BOUNDED
@given(
    st.sampled_from(["regression", "classification"]),
    st.lists(st.tuples(moments, moments, counts, optional() | numbers), min_size=1, max_size=4),
)
def test_a_backtest_as_the_evaluation_writes_it_reads_back(
    task: Any, blocks: list[tuple[Any, Any, int, float | None]]
) -> None:
    rows = [
        BacktestRow(
            "test" if i == len(blocks) - 1 else f"fold {i + 1}",
            Span(start, end, count),
            Span(end, start, count + 1),
            score,
            score,
            Errors(0.5, 0.25, -0.125),
        )
        for i, (start, end, count, score) in enumerate(blocks)
    ]
    written = Backtest("day", "rmse", task, tuple(rows[:-1]), rows[-1]).as_dict()
    record = BacktestRecord.from_json(written)
    assert record.to_json() == written
    assert record.rows[-1].label == "test" and record.test_set == written["test_set"]
