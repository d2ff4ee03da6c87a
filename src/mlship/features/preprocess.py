"""Build the preprocessing that every candidate model carries.

The same fitted Pipeline object runs at training, batch and serving time, so the transforms a model
was trained with are exactly the ones applied to its inputs later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlship.spec.models import Column

NUMERIC = ("integer", "float", "boolean")
CATEGORICAL = ("string", "category")


class FrameCaster(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Select the model's input columns in order and give them plain numpy-friendly dtypes.

    Numeric and boolean columns become float64 (missing -> NaN); text columns become object arrays
    with NaN for missing, which is what scikit-learn's imputers and encoders expect.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = ()) -> None:
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y: Any = None) -> FrameCaster:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for name in self.numeric:
            out[name] = pd.to_numeric(X[name], errors="coerce").astype("float64").to_numpy()
        for name in self.categorical:
            values = X[name].astype("object").to_numpy()
            out[name] = np.where(pd.isna(values), np.nan, values).astype(object)
        return pd.DataFrame(out, index=X.index)


def build_pipeline(features: Sequence[Column], estimator: Any) -> Pipeline:
    """Casting, imputation, scaling and one-hot encoding in front of ``estimator``."""
    numeric = [c.name for c in features if c.type in NUMERIC]
    categorical = [c.name for c in features if c.type in CATEGORICAL]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                min_frequency=5,
                                max_categories=50,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline(
        [
            ("cast", FrameCaster(numeric, categorical)),
            ("preprocess", ColumnTransformer(transformers, remainder="drop")),
            ("model", estimator),
        ]
    )
