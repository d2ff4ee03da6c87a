"""A classifier with a known, adjustable handicap, for gating one model against another.

``FlippedLogistic`` is a logistic regression that answers wrongly on purpose on a fixed share of
rows: every row whose content hashes to 0 modulo ``flip_every`` gets the other class (and its
probabilities swapped). The rows flipped depend on the rows only, so two versions trained the
same way differ exactly on those rows: a known difference for the gate to find, small or large.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class FlippedLogistic(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    def __init__(self, flip_every: int = 0, max_iter: int = 200) -> None:
        self.flip_every = flip_every
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlippedLogistic:
        self.model_ = LogisticRegression(max_iter=self.max_iter).fit(X, y, sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def _flipped(self, X: Any) -> np.ndarray[Any, Any]:
        rows = np.asarray(X.todense() if hasattr(X, "todense") else X, dtype=float)
        if not self.flip_every:
            return np.zeros(len(rows), dtype=bool)
        return np.array(
            [zlib.crc32(np.round(row, 6).tobytes()) % self.flip_every == 0 for row in rows]
        )

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        proba = self.model_.predict_proba(X)
        flipped = self._flipped(X)
        proba[flipped] = proba[flipped][:, ::-1]
        return proba  # type: ignore[no-any-return]

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]  # type: ignore[no-any-return]
