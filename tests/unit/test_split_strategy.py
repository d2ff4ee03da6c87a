"""The split strategy a run records: it names the method really used and its columns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.spec.training import Split
from mlship.train.fit_warnings import CaughtWarning, catching, merge
from mlship.train.split_strategy import SplitStrategy
from mlship.train.splits import cv_folds, train_test_indices

COLUMN = st.text(min_size=1, max_size=20)


@st.composite
def splits(draw: st.DrawFn) -> Split:
    method = draw(st.sampled_from([None, "kfold", "stratified_kfold", "group_kfold",
                                   "timeseries", "holdout"]))  # fmt: skip
    group = draw(st.none() | COLUMN) if method != "group_kfold" else draw(COLUMN)
    time = draw(COLUMN) if method == "timeseries" else draw(st.none() | COLUMN)
    repeats = 1 if method in ("timeseries", "holdout") else draw(st.integers(1, 3))
    return Split(
        method=method,
        group=group,
        time=time,
        repeats=repeats,
        folds=draw(st.integers(2, 10)),
        holdout=draw(st.sampled_from([0.1, 0.2, 0.25])),
        stratify=draw(st.booleans()),
    )


@settings(derandomize=True, max_examples=200, deadline=None)
@given(splits(), st.sampled_from(["classification", "regression"]), st.integers(0, 10_000))
def test_the_text_names_the_columns_the_split_used(split: Split, task: str, rows: int) -> None:
    strategy = SplitStrategy.of(split, task, rows, rows // 4)  # type: ignore[arg-type]
    text = strategy.text()
    assert text.startswith("split: ")
    assert f"({rows // 4} rows)" in text
    if strategy.method == "timeseries":
        assert f"timeseries on `{split.time}`" in text and "latest" in text
        assert strategy.group is None
    elif split.group is not None:
        assert f"by `{split.group}`" in text and f"`{split.group}` groups" in text
        assert not strategy.stratified_test
    else:
        assert "`" not in text
    assert strategy.as_dict()["text"] == text


def test_a_group_split_is_what_the_splitter_does() -> None:
    """Classification with a group: stratified group folds, whole groups in the test set."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": np.repeat(np.arange(40), 5), "y": rng.choice(["a", "b"], 200)})
    split = Split(group="g", folds=4)
    train, test = train_test_indices(frame, frame["y"], split, "classification")
    assert not set(frame["g"].iloc[train]) & set(frame["g"].iloc[test])
    strategy = SplitStrategy.of(split, "classification", len(train), len(test))
    assert strategy.method == "group_kfold" and strategy.stratified_folds
    assert len(cv_folds(frame.iloc[train], frame["y"].iloc[train], split, "classification")) == 4
    assert strategy.text() == (
        f"split: stratified_group_kfold by `g`, 4 folds, test = 20% of `g` groups "
        f"({len(test)} rows)"
    )


def test_every_warning_is_counted_by_kind_and_none_is_shown(capsys: object) -> None:
    with catching() as caught:
        for _ in range(3):
            warnings.warn("lbfgs failed to converge\nIncrease max_iter", UserWarning, stacklevel=1)
        warnings.warn("divide by zero", RuntimeWarning, stacklevel=1)
    assert caught.caught == (
        CaughtWarning("UserWarning", "lbfgs failed to converge ...", 3),
        CaughtWarning("RuntimeWarning", "divide by zero", 1),
    )
    assert merge([caught.caught, caught.caught])[0].count == 6
    assert capsys.readouterr().err == ""  # type: ignore[attr-defined]
