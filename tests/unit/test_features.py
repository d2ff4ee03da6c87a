"""Feature transforms: each option's known answers, one picklable pipeline, and the served path."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import SkipTestWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

from mlship.features.preprocess import FrameCaster, build_pipeline
from mlship.features.transformers import DateParts, OutlierCapper, TextStats, TextTokens
from mlship.serve.app import create_app
from mlship.spec import load_spec
from mlship.spec.data import Column, Transform
from mlship.train.run import execute
from mlship.workspace import Workspace


def _column(name: str, kind: Any, **transform: Any) -> Column:
    return Column(name=name, type=kind, transform=Transform(**transform) if transform else None)


def _prepare(
    columns: list[Column], frame: pd.DataFrame, y: Any = None, estimator: Any = None
) -> Any:
    """The fitted preprocessing (cast, ColumnTransformer) of ``columns`` and its training output."""
    pipeline = build_pipeline(columns, estimator if estimator is not None else LogisticRegression())
    prep = pipeline[:-1]
    return prep, prep.fit_transform(frame, y)


def _dense(values: Any) -> np.ndarray[Any, Any]:
    return np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float64)


# -- defaults ---------------------------------------------------------------------------------


def test_columns_without_transform_keep_the_default_preprocessing() -> None:
    pipeline = build_pipeline(
        [_column("age", "integer"), _column("paid", "boolean"), _column("plan", "category")],
        LogisticRegression(),
    )
    entries = {name: (step, cols) for name, step, cols in pipeline["preprocess"].transformers}
    assert list(entries) == ["numeric", "categorical"]
    numeric, numeric_columns = entries["numeric"]
    assert numeric_columns == ["age", "paid"]
    assert numeric["impute"].strategy == "median"
    assert type(numeric["scale"]).__name__ == "StandardScaler"
    categorical, categorical_columns = entries["categorical"]
    assert categorical_columns == ["plan"]
    assert categorical["impute"].fill_value == "(missing)"
    onehot = categorical["onehot"]
    assert (onehot.handle_unknown, onehot.min_frequency, onehot.max_categories) == (
        "infrequent_if_exist",
        5,
        50,
    )
    assert onehot.sparse_output is False


def test_columns_with_the_same_transform_share_one_entry() -> None:
    pipeline = build_pipeline(
        [
            _column("a", "float", scale="minmax"),
            _column("b", "float"),
            _column("c", "float", scale="minmax"),
            _column("d", "float", scale="standard"),
        ],
        LogisticRegression(),
    )
    assert [(name, cols) for name, _, cols in pipeline["preprocess"].transformers] == [
        ("numeric", ["a", "c"]),
        ("numeric_2", ["b", "d"]),
    ]


# -- impute, cap, scale -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("impute", "fill_value", "expected"),
    [
        ("median", None, 1.0),
        ("mean", None, 2.0),
        ("most_frequent", None, 1.0),
        ("constant", 9, 9.0),
    ],
)
def test_impute_fills_missing_numbers(impute: str, fill_value: Any, expected: float) -> None:
    frame = pd.DataFrame({"x": [1.0, 1.0, 4.0, None]})
    column = _column("x", "float", impute=impute, fill_value=fill_value, scale="none")
    _, values = _prepare([column], frame)
    assert values[:, 0].tolist() == [1.0, 1.0, 4.0, expected]


def test_impute_none_leaves_missing_numbers_for_the_estimator() -> None:
    frame = pd.DataFrame({"x": [1.0, None, 3.0]})
    _, values = _prepare([_column("x", "float", impute="none", scale="none")], frame)
    assert np.isnan(values[1, 0]) and values[[0, 2], 0].tolist() == [1.0, 3.0]


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ("standard", [-1.0, -1.0, 1.0, 1.0]),
        ("minmax", [0.0, 0.0, 1.0, 1.0]),
        ("robust", [-0.5, -0.5, 0.5, 0.5]),
        ("none", [2.0, 2.0, 6.0, 6.0]),
    ],
)
def test_scale(scale: str, expected: list[float]) -> None:
    frame = pd.DataFrame({"x": [2.0, 2.0, 6.0, 6.0]})
    _, values = _prepare([_column("x", "float", scale=scale)], frame)
    assert values[:, 0] == pytest.approx(expected)


def test_iqr_cap_clips_to_the_fences_learned_in_fit() -> None:
    capper = OutlierCapper(method="iqr", threshold=1.5).fit(np.array([[1.0], [2], [3], [4], [100]]))
    # Q1 = 2, Q3 = 4, IQR = 2: fences 2 - 3 and 4 + 3.
    assert capper.lower_.tolist() == [-1.0] and capper.upper_.tolist() == [7.0]
    capped = capper.transform(np.array([[100.0], [-50], [3], [np.nan]]))
    assert capped[:3, 0].tolist() == [7.0, -1.0, 3.0]
    assert np.isnan(capped[3, 0])


def test_zscore_cap_clips_to_mean_plus_minus_threshold_std() -> None:
    capper = OutlierCapper(method="zscore", threshold=1.0).fit(
        np.array([[0.0], [0], [0], [0], [10]])
    )
    # mean 2, std 4
    assert capper.transform(np.array([[10.0], [-5], [1]]))[:, 0].tolist() == [6.0, -2.0, 1.0]


def test_capper_follows_the_scikit_learn_protocol() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkipTestWarning)
        failed = [
            (result["check_name"], result["exception"])
            for result in check_estimator(OutlierCapper(threshold=2.0), on_fail=None)
            if result["status"] == "failed"
        ]
    assert failed == []
    frame = pd.DataFrame({"spend": [1.0, 2.0, 3.0, 400.0], "empty": [np.nan] * 4})
    capper = OutlierCapper(method="zscore", threshold=1.0).fit(frame)
    assert capper.get_feature_names_out().tolist() == ["spend", "empty"]
    assert np.isnan(capper.transform(frame)[:, 1]).all()  # no values: nothing to cap
    copy = clone(capper)
    assert copy.get_params() == {"method": "zscore", "threshold": 1.0}
    assert not hasattr(copy, "lower_")


def test_cap_runs_before_imputation_so_the_mean_is_of_capped_values() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0, None]})
    column = _column("x", "float", cap={"method": "iqr"}, impute="mean", scale="none")
    prep, values = _prepare([column], frame)
    assert values[:, 0] == pytest.approx([1.0, 2.0, 3.0, 4.0, 7.0, 3.4])
    assert prep.transform(pd.DataFrame({"x": [1000.0]}))[0, 0] == 7.0


# -- encoders ---------------------------------------------------------------------------------


def test_ordinal_codes_with_unknown_and_missing_labels() -> None:
    frame = pd.DataFrame({"plan": ["b", "a", "c", "a", None]})
    prep, values = _prepare([_column("plan", "category", encode="ordinal")], frame)
    # The default imputation turns missing into a "(missing)" level, which sorts first.
    assert values[:, 0].tolist() == [2.0, 1.0, 3.0, 1.0, 0.0]
    assert prep.transform(pd.DataFrame({"plan": ["c", "zzz"]}))[:, 0].tolist() == [3.0, -1.0]

    prep, values = _prepare([_column("plan", "category", encode="ordinal", impute="none")], frame)
    assert values[:, 0].tolist() == [1.0, 0.0, 2.0, 0.0, -2.0]
    assert prep.transform(pd.DataFrame({"plan": ["zzz", None]}))[:, 0].tolist() == [-1.0, -2.0]


def test_onehot_without_imputation_gives_missing_its_own_column() -> None:
    frame = pd.DataFrame({"plan": ["a"] * 5 + ["b"] * 5 + [None] * 5})
    _, values = _prepare([_column("plan", "category", impute="none")], frame)
    assert values.shape == (15, 3)
    assert (values.sum(axis=1) == 1).all()
    assert len({tuple(row) for row in values}) == 3


def _categories(n: int, levels: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(levels)], n)})


def test_target_encoding_is_cross_fitted_on_training_rows() -> None:
    frame = _categories(200, 6)
    likely = frame["city"].isin(["c0", "c1"]).to_numpy()
    noise = np.random.default_rng(4).random(200)
    y = pd.Series(np.where(noise < np.where(likely, 0.8, 0.2), "yes", "no"))
    prep, train = _prepare([_column("city", "category", encode="target")], frame, y)
    refit = prep.transform(frame)
    assert train.shape == refit.shape == (200, 1)
    assert not np.allclose(train, refit)
    encoder = prep["preprocess"].named_transformers_["categorical"]["target"]
    assert encoder.target_type_ == "binary"
    by_city = dict(zip(encoder.categories_[0], encoder.encodings_[0], strict=True))
    assert refit[:, 0].tolist() == pytest.approx([by_city[c] for c in frame["city"]])


def test_a_row_never_sees_its_own_target_during_training() -> None:
    # Every row its own category: only the row's own target could tell the classes apart.
    frame = pd.DataFrame({"city": [f"c{i}" for i in range(100)]})
    y = pd.Series(["yes", "no"] * 50)
    prep, train = _prepare([_column("city", "category", encode="target")], frame, y)
    refit = prep.transform(frame)
    positive = (y == "yes").to_numpy()
    assert train[positive, 0].mean() == pytest.approx(train[~positive, 0].mean())
    assert refit[positive, 0].mean() > refit[~positive, 0].mean() + 0.1


def test_target_encoding_of_a_multiclass_target_has_a_column_per_class() -> None:
    frame = _categories(150, 4)
    y = pd.Series(np.random.default_rng(1).choice(["red", "green", "blue"], 150))
    prep, train = _prepare([_column("city", "category", encode="target")], frame, y)
    assert train.shape == (150, 3)
    assert prep.transform(frame).shape == (150, 3)


def test_target_encoding_for_a_regressor_treats_whole_numbers_as_continuous() -> None:
    frame = _categories(120, 5)
    y = pd.Series(np.random.default_rng(2).integers(0, 30, 120))
    prep, train = _prepare(
        [_column("city", "string", encode="target")], frame, y, estimator=Ridge()
    )
    assert train.shape == (120, 1)
    encoder = prep["preprocess"].named_transformers_["categorical"]["target"]
    assert encoder.target_type_ == "continuous"


# -- datetimes --------------------------------------------------------------------------------


def test_date_parts_known_answers_in_utc() -> None:
    stamps = pd.DataFrame({"at": ["2024-03-01T10:45:00+02:00", "2023-12-31T23:59:00Z", None]})
    parts = DateParts(parts=["year", "month", "day", "dayofweek", "hour", "minute"]).fit(stamps)
    values = parts.transform(stamps)
    assert values[0].tolist() == [2024, 3, 1, 4, 8, 45]  # a Friday, 08:45 UTC
    assert values[1].tolist() == [2023, 12, 31, 6, 23, 59]
    assert np.isnan(values[2]).all()
    assert parts.get_feature_names_out().tolist() == [
        "at_year",
        "at_month",
        "at_day",
        "at_dayofweek",
        "at_hour",
        "at_minute",
    ]


def test_a_datetime_feature_defaults_to_year_month_dayofweek_median_imputed() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(
                pd.Series(["2024-01-01", "2024-01-03", "2026-05-09", None]), utc=True
            )
        }
    )
    column = _column("at", "datetime", scale="none")
    prep, values = _prepare([column], frame)
    assert prep.get_feature_names_out().tolist() == [
        "datetime__at_year",
        "datetime__at_month",
        "datetime__at_dayofweek",
    ]
    assert values[:3].tolist() == [[2024, 1, 0], [2024, 1, 2], [2026, 5, 5]]
    assert values[3].tolist() == [2024, 1, 2]  # medians of the parts


def test_iso_strings_and_typed_datetimes_give_the_same_features() -> None:
    typed = pd.DataFrame(
        {"at": pd.to_datetime(["2024-03-01T08:45:00Z", "2024-06-30T23:10:00Z"], utc=True)}
    )
    prep, values = _prepare([_column("at", "datetime", parts=["dayofweek", "hour"])], typed)
    as_text = pd.DataFrame({"at": ["2024-03-01T10:45:00+02:00", "2024-06-30T20:10:00-03:00"]})
    assert prep.transform(as_text).tolist() == values.tolist()


# -- text -------------------------------------------------------------------------------------


def test_text_length_and_words() -> None:
    frame = pd.DataFrame({"review": ["Hello big world", "  spaced   out ", None]})
    stats = TextStats(parts=["length", "words"]).fit(frame)
    assert stats.transform(frame).tolist() == [[15, 3], [15, 2], [0, 0]]
    assert stats.get_feature_names_out().tolist() == ["review_length", "review_words"]


def test_tokens_keep_at_most_max_tokens_words() -> None:
    frame = pd.DataFrame(
        {"review": ["good good value", "bad value", "good service", "slow delivery", None]}
    )
    tokens = TextTokens(max_tokens=3).fit(frame)
    names = tokens.get_feature_names_out().tolist()
    assert len(names) == 3
    assert {"review_good", "review_value"} <= set(names)
    matrix = tokens.transform(pd.DataFrame({"review": ["unheard of words", None, "good"]}))
    assert sp.issparse(matrix) and matrix.shape == (3, 3)
    dense = matrix.toarray()
    assert dense[0].tolist() == [0, 0, 0] and dense[1].tolist() == [0, 0, 0]
    assert dense[2].max() == pytest.approx(1.0)  # one known word, L2-normalised


def test_text_feature_in_a_pipeline() -> None:
    frame = pd.DataFrame({"note": ["fast and cheap", "slow", None, "cheap cheap cheap"]})
    column = _column("note", "string", text=["words", "tokens"], max_tokens=2)
    prep, values = _prepare([column], frame)
    names = prep.get_feature_names_out().tolist()
    assert names[0] == "text__note_words"
    assert len(names) == 3 and all(n.startswith("tokens__note_") for n in names[1:])
    assert values.shape == (4, 3)


def _with_tokens(estimator: Any) -> Any:
    frame = pd.DataFrame(
        {"note": ["a fine day", "rain again", "fine and dry", "more rain"] * 5, "n": range(20)}
    )
    columns = [_column("note", "string", text=["tokens"]), _column("n", "integer")]
    return _prepare(columns, frame, pd.Series(["y", "n"] * 10), estimator)[1]


def test_tokens_stay_sparse_for_estimators_that_take_sparse_input() -> None:
    assert sp.issparse(_with_tokens(LogisticRegression()))
    assert sp.issparse(_with_tokens(RandomForestClassifier()))


def test_tokens_are_dense_for_hist_gradient_boosting() -> None:
    assert isinstance(_with_tokens(HistGradientBoostingClassifier()), np.ndarray)


def test_without_tokens_the_output_is_dense() -> None:
    frame = pd.DataFrame({"note": ["x y", "z"], "n": [1, 2]})
    columns = [_column("note", "string", text=["length"]), _column("n", "integer")]
    assert isinstance(_prepare(columns, frame)[1], np.ndarray)


# -- the whole pipeline -----------------------------------------------------------------------

EVERY_KIND = [
    _column("age", "integer"),
    _column("spend", "float", cap={"method": "iqr", "threshold": 1.5}, scale="robust"),
    _column("visits", "float", cap={"method": "zscore", "threshold": 2}, impute="mean"),
    _column("member", "boolean", scale="minmax"),
    _column("plan", "category"),
    _column("region", "category", encode="ordinal", impute="most_frequent"),
    _column("city", "string", encode="target"),
    _column("signed_up", "datetime", parts=["year", "month", "day", "hour"]),
    _column("last_seen", "datetime"),
    _column("review", "string", text=["length", "words", "tokens"], max_tokens=5),
]


def _every_kind_frame(n: int = 120, seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    words = np.array(["great", "slow", "cheap", "broken", "fine", "late", "love"])
    reviews = [" ".join(rng.choice(words, rng.integers(1, 5))) for _ in range(n)]
    frame = pd.DataFrame(
        {
            "age": pd.array(rng.integers(18, 80, n), dtype="Int64"),
            "spend": np.r_[rng.gamma(2.0, 30.0, n - 1), 5000.0],
            "visits": rng.poisson(4, n).astype(float),
            "member": pd.array(rng.random(n) > 0.5, dtype="boolean"),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "region": rng.choice(["north", "south", "east"], n),
            "city": rng.choice([f"city{i}" for i in range(12)], n),
            "signed_up": pd.to_datetime("2022-01-01", utc=True)
            + pd.to_timedelta(rng.integers(0, 900 * 24, n), unit="h"),
            "last_seen": pd.to_datetime("2024-01-01", utc=True)
            + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "review": reviews,
        }
    )
    frame.loc[::7, "spend"] = np.nan
    frame.loc[::11, "review"] = None
    frame.loc[::13, "last_seen"] = pd.NaT
    score = frame["city"].isin(["city1", "city2", "city3"]).astype(int) + frame["review"].fillna(
        ""
    ).str.contains("great").astype(int)
    return frame, pd.Series(np.where(score > 0, "yes", "no"))


@pytest.mark.parametrize(
    "estimator",
    [LogisticRegression(max_iter=2000), HistGradientBoostingClassifier(max_iter=30)],
    ids=["sparse", "dense"],
)
def test_every_kind_of_transform_fits_pickles_and_predicts_the_same(estimator: Any) -> None:
    frame, y = _every_kind_frame()
    pipeline = build_pipeline(EVERY_KIND, estimator).fit(frame, y)
    restored = pickle.loads(pickle.dumps(pipeline, protocol=5))
    new, _ = _every_kind_frame(n=40, seed=4)
    assert (restored.predict(new) == pipeline.predict(new)).all()
    assert np.array_equal(restored.predict_proba(new), pipeline.predict_proba(new))
    names = pipeline[:-1].get_feature_names_out()
    assert len(names) == _dense(pipeline[:-1].transform(new)).shape[1]
    assert {"numeric__age", "datetime__signed_up_hour", "categorical_3__city"} <= set(names)


def test_the_same_data_gives_the_same_model() -> None:
    frame, y = _every_kind_frame()
    pipeline = build_pipeline(EVERY_KIND, LogisticRegression(max_iter=2000))
    first = clone(pipeline).fit(frame, y).predict_proba(frame)
    second = clone(pipeline).fit(frame, y).predict_proba(frame)
    assert np.array_equal(first, second)


def test_a_transform_that_does_not_fit_its_column_is_refused() -> None:
    with pytest.raises(ValueError, match=r"column 'plan', transform\.cap: `cap` applies to"):
        build_pipeline([_column("plan", "category", cap={"method": "iqr"})], LogisticRegression())


def test_a_caster_pickled_before_datetime_features_still_casts() -> None:
    caster = FrameCaster(["n"], ["c"])
    del caster.__dict__["datetimes"]
    restored = pickle.loads(pickle.dumps(caster))
    cast = restored.transform(pd.DataFrame({"n": ["1", None], "c": ["x", None]}))
    assert cast["n"].tolist()[0] == 1.0 and np.isnan(cast["n"].tolist()[1])
    assert restored.datetimes == ()


# -- end to end: train, register, serve -------------------------------------------------------

SPEC = """\
name: orders
task: classification
sources:
  - path: orders.csv
columns:
  - {name: order_id, type: string, role: id, nullable: false}
  - {name: placed_at, type: datetime, transform: {parts: [year, month, dayofweek, hour]}}
  - {name: review, type: string, transform: {text: [length, words, tokens], max_tokens: 8}}
  - {name: city, type: category, transform: {encode: target}}
  - {name: amount, type: float, transform: {cap: {method: iqr, threshold: 1.5}}}
  - {name: returned, type: category, role: target, nullable: false}
models:
  - {name: logistic, estimator: logistic_regression, params: {max_iter: 2000}}
  - {name: boosting, estimator: hist_gradient_boosting, params: {max_iter: 30, random_state: 0}}
split: {holdout: 0.25, folds: 3, seed: 7}
metric: roc_auc
"""


def _write_orders(directory: Path, n: int = 240) -> Path:
    rng = np.random.default_rng(5)
    words = np.array(["broken", "late", "great", "fine", "love", "ok", "cheap"])
    placed = pd.to_datetime("2024-01-01", utc=True) + pd.to_timedelta(
        rng.integers(0, 200 * 24 * 60, n), unit="min"
    )
    reviews = [" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(n)]
    cities = rng.choice(["oslo", "rome", "lima", "pune", "kobe", "nice"], n)
    amount = rng.gamma(2.0, 40.0, n)
    risk = (
        (np.char.find(np.array(reviews), "broken") >= 0).astype(float)
        + np.isin(cities, ["rome", "lima"]) * 0.8
        + rng.normal(0, 0.4, n)
    )
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "placed_at": placed.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "review": reviews,
            "city": cities,
            "amount": amount.round(2),
            "returned": np.where(risk > 0.7, "yes", "no"),
        }
    )
    frame.loc[::17, "review"] = None
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / "orders.csv", index=False)
    spec = directory / "pipeline.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    return spec


def test_a_run_with_datetime_text_and_target_encoding_trains_and_serves(
    tmp_path: Path, workspace: Workspace
) -> None:
    spec = _write_orders(tmp_path / "orders")
    result = execute(load_spec(spec), workspace)
    assert {row.name for row in result.leaderboard} == {"logistic", "boosting"}
    assert 0.5 < result.holdout["roc_auc"] <= 1.0
    inputs = {c["name"]: c["type"] for c in result.version.signature["inputs"]}
    assert inputs == {
        "placed_at": "datetime",
        "review": "string",
        "city": "category",
        "amount": "float",
    }

    model = workspace.load_model(workspace.tracking.get_version("orders"))
    preprocess: Pipeline = model.pipeline["preprocess"]
    assert {name for name, _, _ in preprocess.transformers} >= {"datetime", "text", "tokens"}

    raw = pd.read_csv(tmp_path / "orders" / "orders.csv", dtype=str, keep_default_na=False)
    row = raw.iloc[3]
    _, file_proba = model.predict(model.prepare(raw.iloc[[3]], "orders.csv", csv_lines=True))

    stamp = pd.Timestamp(row["placed_at"])
    record = {
        "placed_at": stamp.tz_convert("America/Sao_Paulo").isoformat(),  # same instant, -03:00
        "review": row["review"] or None,
        "city": row["city"],
        "amount": float(row["amount"]),
    }
    with TestClient(create_app(model)) as client:
        response = client.post("/predict", json={"records": [record]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"][0] in ("yes", "no")
        assert file_proba is not None
        served = [body["probabilities"][0][label] for label in ("no", "yes")]
        assert served == pytest.approx(file_proba[0].tolist(), abs=1e-12)

        bad = client.post("/predict", json={"records": [{**record, "placed_at": "last tuesday"}]})
        assert bad.status_code == 422
        assert bad.json()["errors"][0].startswith("records[0].placed_at:")
