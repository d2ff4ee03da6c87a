"""Build the preprocessing that every candidate model carries.

The same fitted Pipeline object runs at training, batch and serving time, so the transforms a model
was trained with are exactly the ones applied to its inputs later. Each feature column's
``transform`` is resolved to a plan (``mlship.features.plan``); columns with the same plan share one
entry of the ColumnTransformer, and a spec without transforms compiles to the same pipeline as it
always has: median imputation and standard scaling for numbers, a "(missing)" level and one-hot
encoding for labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from mlship.features.plan import (
    CategoricalPlan,
    DatetimePlan,
    NumericPlan,
    Plan,
    TextPlan,
    column_kind,
    plan_for,
    transform_problems,
)
from mlship.features.transformers import (
    DateParts,
    OutlierCapper,
    TextStats,
    TextTokens,
    parse_datetimes,
)
from mlship.spec.models import Column

NUMERIC = ("integer", "float", "boolean")
CATEGORICAL = ("string", "category")

UNKNOWN_CODE = -1
MISSING_CODE = -2
TARGET_FOLDS = 5
TARGET_FOLDS_SEED = 0

_SCALERS: dict[str, type[Any]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}
_KIND_ORDER = {NumericPlan: 0, DatetimePlan: 1, CategoricalPlan: 2, TextPlan: 3}

Entry = tuple[str, Any, list[str]]


class FrameCaster(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Select the model's input columns in order and give them plain numpy-friendly dtypes.

    Numeric and boolean columns become float64 (missing -> NaN); text columns become object arrays
    with NaN for missing, which is what scikit-learn's imputers and encoders expect; date/time
    columns become UTC timestamps whether they arrive typed (training) or as ISO strings (a request
    or a file to score).
    """

    def __init__(
        self,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        datetimes: Sequence[str] = (),
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.datetimes = datetimes

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Model files written before date/time features existed have no ``datetimes``.
        state.setdefault("datetimes", ())
        super().__setstate__(state)

    def fit(self, X: pd.DataFrame, y: Any = None) -> FrameCaster:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for name in self.numeric:
            out[name] = pd.to_numeric(X[name], errors="coerce").astype("float64").to_numpy()
        for name in self.categorical:
            values = X[name].astype("object").to_numpy()
            out[name] = np.where(pd.isna(values), np.nan, values).astype(object)
        for name in self.datetimes:
            out[name] = parse_datetimes(X[name])  # a Series on X's index, tz-aware dtype kept
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> Any:
        return np.asarray([*self.numeric, *self.categorical, *self.datetimes], dtype=object)


def build_pipeline(features: Sequence[Column], estimator: Any) -> Pipeline:
    """Cast, then each column's transform (one ColumnTransformer), then ``estimator``.

    Raises ValueError when a column's transform does not fit the column; the spec loader reports
    the same problems with their lines, so this only fires for columns built by hand.
    """
    _raise_on_problems(features)
    groups = _group_by_plan(features)
    entries = _name_entries(
        (prefix, transformer, names)
        for plan, names in groups
        for prefix, transformer in _compile(plan, estimator)
    )
    has_tokens = any(isinstance(plan, TextPlan) and plan.max_tokens for plan, _ in groups)
    sparse = has_tokens and accepts_sparse(estimator)
    return Pipeline(
        [
            ("cast", _caster(features)),
            (
                "preprocess",
                ColumnTransformer(entries, remainder="drop", sparse_threshold=1.0 if sparse else 0),
            ),
            ("model", estimator),
        ]
    )


def accepts_sparse(estimator: Any) -> bool:
    """Whether the estimator declares it takes sparse input (HistGradientBoosting does not).

    A bag of words is mostly zeros, so it stays sparse where the estimator can take it; anything
    that does not say so gets a dense matrix, which always works.
    """
    try:
        return bool(estimator.__sklearn_tags__().input_tags.sparse)
    except AttributeError:
        return False


def _raise_on_problems(features: Sequence[Column]) -> None:
    problems = [
        f"column {column.name!r}, {'.'.join(loc)}: {message}"
        for column in features
        for loc, message in transform_problems(column)
    ]
    if problems:
        raise ValueError("; ".join(problems))


def _caster(features: Sequence[Column]) -> FrameCaster:
    return FrameCaster(
        [c.name for c in features if c.type in NUMERIC],
        [c.name for c in features if c.type in CATEGORICAL],
        [c.name for c in features if column_kind(c) == "datetime"],
    )


def _group_by_plan(features: Sequence[Column]) -> list[tuple[Plan, list[str]]]:
    """Columns prepared alike share one entry; entries go numbers, dates, labels, text."""
    groups: dict[Plan, list[str]] = {}
    for column in features:
        groups.setdefault(plan_for(column), []).append(column.name)
    return sorted(groups.items(), key=lambda item: _KIND_ORDER[type(item[0])])


def _name_entries(entries: Any) -> list[Entry]:
    """``numeric``, ``numeric_2``, ...: readable, unique entry names (they prefix feature names)."""
    seen: dict[str, int] = {}
    named: list[Entry] = []
    for prefix, transformer, names in entries:
        seen[prefix] = seen.get(prefix, 0) + 1
        name = prefix if seen[prefix] == 1 else f"{prefix}_{seen[prefix]}"
        named.append((name, transformer, names))
    return named


def _compile(plan: Plan, estimator: Any) -> list[tuple[str, Any]]:
    """The (entry name prefix, transformer) pairs one plan becomes."""
    if isinstance(plan, NumericPlan):
        return [("numeric", _numeric(plan))]
    if isinstance(plan, DatetimePlan):
        return [("datetime", _datetime(plan))]
    if isinstance(plan, CategoricalPlan):
        return [("categorical", _categorical(plan, estimator))]
    return _text(plan)


def _steps_or_passthrough(steps: list[tuple[str, Any]]) -> Any:
    return Pipeline(steps) if steps else "passthrough"


def _number_steps(impute: str, fill_value: float | None, scale: str) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = []
    if impute != "none":
        steps.append(("impute", _imputer(impute, fill_value)))
    if scale != "none":
        steps.append(("scale", _SCALERS[scale]()))
    return steps


def _imputer(strategy: str, fill_value: Any) -> SimpleImputer:
    if strategy == "constant":
        return SimpleImputer(strategy="constant", fill_value=fill_value)
    return SimpleImputer(strategy=strategy)


def _numeric(plan: NumericPlan) -> Any:
    """Cap first, so fences and means are learned from (and applied to) the observed values."""
    steps: list[tuple[str, Any]] = []
    if plan.cap is not None:
        method, threshold = plan.cap
        steps.append(("cap", OutlierCapper(method=method, threshold=threshold)))
    steps.extend(_number_steps(plan.impute, plan.fill_value, plan.scale))
    return _steps_or_passthrough(steps)


def _datetime(plan: DatetimePlan) -> Pipeline:
    steps: list[tuple[str, Any]] = [("parts", DateParts(parts=plan.parts))]
    steps.extend(_number_steps(plan.impute, plan.fill_value, plan.scale))
    return Pipeline(steps)


def _categorical(plan: CategoricalPlan, estimator: Any) -> Pipeline:
    steps: list[tuple[str, Any]] = []
    if plan.impute != "none":
        steps.append(("impute", _imputer(plan.impute, plan.fill_value)))
    steps.append((plan.encode, _encoder(plan.encode, estimator)))
    return Pipeline(steps)


def _encoder(encode: str, estimator: Any) -> Any:
    if encode == "ordinal":
        return OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=UNKNOWN_CODE,
            encoded_missing_value=MISSING_CODE,
        )
    if encode == "target":
        return _target_encoder(estimator)
    return OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=5,
        max_categories=50,
        sparse_output=False,
    )


def _target_encoder(estimator: Any) -> TargetEncoder:
    """Target encoding with cross fitting on seeded folds, matched to the task.

    ``fit_transform`` encodes each training row with means learned on the other folds, so a row
    never sees its own target; the folds are seeded so the same data gives the same model. A
    regressor's target is continuous even when its values are whole numbers (which scikit-learn
    would otherwise take for classes); a classifier's folds are stratified.
    """
    if is_regressor(estimator):
        folds: Any = KFold(TARGET_FOLDS, shuffle=True, random_state=TARGET_FOLDS_SEED)
        return TargetEncoder(target_type="continuous", cv=folds)
    if is_classifier(estimator):
        folds = StratifiedKFold(TARGET_FOLDS, shuffle=True, random_state=TARGET_FOLDS_SEED)
    else:
        folds = KFold(TARGET_FOLDS, shuffle=True, random_state=TARGET_FOLDS_SEED)
    return TargetEncoder(target_type="auto", cv=folds)


def _text(plan: TextPlan) -> list[tuple[str, Any]]:
    """Counts are scaled like any number; the bag of words is already on a 0..1 scale."""
    compiled: list[tuple[str, Any]] = []
    if plan.stats:
        stats = Pipeline([("stats", TextStats(parts=plan.stats)), ("scale", StandardScaler())])
        compiled.append(("text", stats))
    if plan.max_tokens is not None:
        compiled.append(("tokens", TextTokens(max_tokens=plan.max_tokens)))
    return compiled
