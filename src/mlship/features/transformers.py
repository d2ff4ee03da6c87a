"""Small scikit-learn transformers for the feature transforms a spec can ask for.

They live at module level and keep only plain data and fitted scikit-learn objects, because model
files are pickles: whatever a fitted pipeline holds must unpickle in another process. Each follows
scikit-learn's protocol (parameters stored unchanged in ``__init__``, learned state in attributes
ending in ``_`` set by ``fit``), so ``clone`` gives an unfitted copy for every CV fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted, validate_data

Array = np.ndarray[Any, Any]

# Spec name of each date part -> the pandas ``.dt`` attribute that computes it.
DATE_PARTS = {
    "year": "year",
    "month": "month",
    "day": "day",
    "dayofweek": "day_of_week",
    "hour": "hour",
    "minute": "minute",
}
TEXT_STATS = ("length", "words")


def parse_datetimes(values: Any) -> pd.Series:
    """Date/times as UTC timestamps, whatever form they arrive in (missing or unreadable -> NaT).

    Training data is typed to UTC by the schema check, while a request or a file to score brings
    ISO strings or Python datetimes with any offset; parsing all of them the same way here is what
    makes a served prediction see the same instant, and so the same date parts, as training did.
    Values without an offset are taken as UTC, as the schema check takes them.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype="object")
    return pd.to_datetime(series, errors="coerce", utc=True, format="mixed")


def _as_frame(X: Any) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))


def _remember_inputs(estimator: BaseEstimator, X: Any) -> None:
    """Record the input width (and column names of a DataFrame) for ``get_feature_names_out``."""
    estimator.n_features_in_ = X.shape[1]
    if isinstance(X, pd.DataFrame):
        estimator.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_  # refitted on an array: the old names no longer apply


def _input_names(estimator: BaseEstimator, input_features: Sequence[str] | None) -> list[str]:
    check_is_fitted(estimator, "n_features_in_")
    if input_features is not None:
        names = [str(name) for name in input_features]
        if len(names) != estimator.n_features_in_:
            raise ValueError(f"expected {estimator.n_features_in_} input feature names")
        return names
    known = getattr(estimator, "feature_names_in_", None)
    if known is not None:
        return list(known)
    return [f"x{i}" for i in range(estimator.n_features_in_)]


def _check_choices(given: Sequence[str], allowed: Sequence[str], what: str) -> None:
    unknown = [name for name in given if name not in allowed]
    if unknown or not given:
        raise ValueError(f"{what} must be a non-empty list of: {', '.join(allowed)}; got {given!r}")


class OutlierCapper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clip each numeric column to outlier fences learned from the training data.

    ``iqr``: ``[Q1 - threshold * IQR, Q3 + threshold * IQR]``; ``zscore``: ``mean ± threshold *
    std``. Fences are learned in ``fit`` so a scored row is capped at the training fences, never
    at fences of the rows it arrives with. Missing values are ignored when learning and stay
    missing; a column with no values at all is not capped.
    """

    def __init__(self, method: str = "iqr", threshold: float = 1.5) -> None:
        self.method = method
        self.threshold = threshold

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values pass through, for the imputer after it
        return tags

    def fit(self, X: Any, y: Any = None) -> OutlierCapper:
        if self.method not in ("iqr", "zscore"):
            raise ValueError(f"method must be 'iqr' or 'zscore', got {self.method!r}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold!r}")
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        fences = [self._fences(values[:, i]) for i in range(values.shape[1])]
        self.lower_ = np.array([low for low, _ in fences], dtype=np.float64)
        self.upper_ = np.array([high for _, high in fences], dtype=np.float64)
        return self

    def _fences(self, column: Array) -> tuple[float, float]:
        present = column[~np.isnan(column)]
        if not len(present):
            return -np.inf, np.inf
        if self.method == "iqr":
            q1, q3 = np.percentile(present, [25, 75])
            spread = self.threshold * (q3 - q1)
            return float(q1 - spread), float(q3 + spread)
        mean, std = float(np.mean(present)), float(np.std(present))
        return mean - self.threshold * std, mean + self.threshold * std

    def transform(self, X: Any) -> Array:
        check_is_fitted(self, ("lower_", "upper_"))
        values = validate_data(
            self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan", copy=True
        )
        clipped: Array = np.clip(values, self.lower_, self.upper_)
        return clipped


def _float_array(values: pd.Series) -> Array:
    return values.astype("float64").to_numpy()


class DateParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Numbers taken from date/time columns: one output column per (column, part), in UTC.

    Stateless, but ``fit`` records the inputs so the output columns can be named
    (``signup_month``). Missing date/times give NaN parts, which the imputer after it fills.
    ``dayofweek`` counts from Monday = 0.
    """

    def __init__(self, parts: Sequence[str] = ("year", "month", "dayofweek")) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DateParts:
        _check_choices(self.parts, list(DATE_PARTS), "parts")
        _remember_inputs(self, X)
        return self

    def transform(self, X: Any) -> Array:
        check_is_fitted(self, "n_features_in_")
        frame = _as_frame(X)
        columns: list[Array] = []
        for name in frame.columns:
            stamps = parse_datetimes(frame[name]).dt
            columns.extend(_float_array(getattr(stamps, DATE_PARTS[part])) for part in self.parts)
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> Array:
        names = _input_names(self, input_features)
        return np.asarray([f"{n}_{part}" for n in names for part in self.parts], dtype=object)


def _document(value: Any) -> str:
    """A text value, with a missing one as empty text: a missing review has no length or words."""
    if isinstance(value, str):
        return value
    return "" if pd.isna(value) else str(value)


def _documents(column: pd.Series) -> list[str]:
    return [_document(value) for value in column]


def _count(part: str, docs: list[str]) -> Array:
    if part == "length":
        return np.asarray([len(doc) for doc in docs], dtype=np.float64)
    return np.asarray([len(doc.split()) for doc in docs], dtype=np.float64)


class TextStats(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Length in characters and number of whitespace-separated words of each text column."""

    def __init__(self, parts: Sequence[str] = TEXT_STATS) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> TextStats:
        _check_choices(self.parts, TEXT_STATS, "parts")
        _remember_inputs(self, X)
        return self

    def transform(self, X: Any) -> Array:
        check_is_fitted(self, "n_features_in_")
        frame = _as_frame(X)
        columns: list[Array] = []
        for name in frame.columns:
            docs = _documents(frame[name])
            columns.extend(_count(part, docs) for part in self.parts)
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> Array:
        names = _input_names(self, input_features)
        return np.asarray([f"{n}_{part}" for n in names for part in self.parts], dtype=object)


class TextTokens(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A bag of words per text column: TF-IDF weights of its ``max_tokens`` most frequent words.

    One vocabulary per column, learned in ``fit``; words never seen in training are ignored when
    scoring. TF-IDF rather than raw counts keeps each row's weights on a 0..1 scale (rows are
    L2-normalised), comparable with the standardised numeric features for linear models. The
    output is a sparse matrix; the pipeline decides whether it is densified for the estimator.
    """

    def __init__(self, max_tokens: int = 100) -> None:
        self.max_tokens = max_tokens

    def fit(self, X: Any, y: Any = None) -> TextTokens:
        frame = _as_frame(X)
        self.vectorizers_ = [
            TfidfVectorizer(max_features=self.max_tokens).fit(_documents(frame[name]))
            for name in frame.columns
        ]
        _remember_inputs(self, X)
        return self

    def transform(self, X: Any) -> sp.csr_matrix:
        check_is_fitted(self, "vectorizers_")
        frame = _as_frame(X)
        blocks = [
            vectorizer.transform(_documents(frame[name]))
            for name, vectorizer in zip(frame.columns, self.vectorizers_, strict=True)
        ]
        return sp.csr_matrix(sp.hstack(blocks, format="csr"))

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> Array:
        names = _input_names(self, input_features)
        return np.asarray(
            [
                f"{name}_{token}"
                for name, vectorizer in zip(names, self.vectorizers_, strict=True)
                for token in vectorizer.get_feature_names_out()
            ],
            dtype=object,
        )
