"""XGBoost's classifier for any class labels: the catalog's ``xgboost`` classification entry.

In a module of its own so that only naming (or unpickling) it imports XGBoost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier


class XGBLabelClassifier(XGBClassifier):
    """XGBoost's classifier for any class labels.

    XGBoost learns from the labels 0..n-1 only. This classifier encodes the labels it is given
    (strings, booleans, numbers) with a LabelEncoder before fitting, predicts the original labels,
    and keeps them in ``classes_``, in the order of ``predict_proba``'s columns. It takes exactly
    XGBClassifier's parameters and pickles like it; unlike XGBClassifier, fitting does not change
    its parameters, so a fitted model can be cloned and refitted on any classes.
    """

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBLabelClassifier:
        for fitted in ("label_encoder_", "_Booster", "n_classes_"):
            self.__dict__.pop(fitted, None)  # a refit starts afresh, whatever the classes were
        encoder = LabelEncoder().fit(np.asarray(y))
        eval_set = kwargs.get("eval_set")
        if eval_set is not None:
            kwargs["eval_set"] = [
                (X_eval, encoder.transform(y_eval)) for X_eval, y_eval in eval_set
            ]
        objective = self.objective
        try:
            super().fit(X, encoder.transform(np.asarray(y)), **kwargs)
        finally:
            # XGBoost switches ``objective`` to multi:softprob for three or more classes; the
            # booster keeps what it trained with, and the parameter stays what was asked for, so
            # a clone of this model can be fitted on two classes again.
            self.objective = objective
        self.label_encoder_ = encoder
        return self

    @property
    def classes_(self) -> np.ndarray[Any, Any]:
        encoder: LabelEncoder | None = self.__dict__.get("label_encoder_")
        if encoder is None:
            return np.arange(self.n_classes_)
        return encoder.classes_  # type: ignore[no-any-return]

    def predict(self, X: Any, **kwargs: Any) -> Any:
        predicted = super().predict(X, **kwargs)
        if kwargs.get("output_margin"):
            return predicted
        return self.label_encoder_.inverse_transform(np.asarray(predicted).astype(np.intp))
