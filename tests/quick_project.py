"""The quickest real project: the small churn example with one untuned model and two folds."""

from __future__ import annotations

from pathlib import Path

from mlship.examples.churn import write_project
from tests.conftest import SMALL_ROWS

FAST_MODELS = """models:
  - {name: logistic, estimator: logistic_regression, params: {max_iter: 200}}
split: {holdout: 0.2, folds: 2, seed: 42}
metric: average_precision
executor: inline
"""


def fast_churn(root: Path) -> Path:
    """Write the project into ``root``; the path of its spec (the example's sources and checks,
    the fastest model settings its spec allows)."""
    spec = write_project(root, n=SMALL_ROWS)
    text = spec.read_text()
    spec.write_text(text[: text.index("models:")] + FAST_MODELS)
    return spec
