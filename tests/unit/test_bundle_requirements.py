"""Pinning what a bundle needs: the closure over installed metadata, and the pickle's modules."""

from __future__ import annotations

import pickle
from importlib.metadata import version

from sklearn.linear_model import LogisticRegression

from mlship.package.requirements import bundle_requirements, pickled_modules, pin_closure


def test_the_closure_pins_every_installed_dependency_and_no_unrequested_extra() -> None:
    pins = pin_closure(["fastapi"])
    assert pins.versions["fastapi"] == ("fastapi", version("fastapi"))
    assert pins.versions["starlette"][1] == version("starlette")
    assert pins.versions["pydantic-core"][1] == version("pydantic-core")  # two levels down
    # fastapi's "standard" extra (uvicorn, email-validator, ...) was not asked for.
    assert "email-validator" not in pins.versions and "uvicorn" not in pins.versions
    assert pins.missing == []


def test_other_platforms_requirements_are_left_out_and_missing_ones_reported() -> None:
    assert "colorama" not in pin_closure(["click"]).versions  # a Windows-only dependency
    assert pin_closure(["nonexistent-distribution-xyz"]).missing == ["nonexistent-distribution-xyz"]


def test_the_pickles_modules_decide_the_model_libraries() -> None:
    data = pickle.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    assert "sklearn.linear_model._logistic" in pickled_modules(data)
    pins, needs = bundle_requirements(data)
    assert "scikit-learn" in needs
    assert "mlship" not in pins.versions and "optuna" not in pins.versions
    assert pins.versions["scikit-learn"][1] == version("scikit-learn")


def test_polars_is_installed_only_for_a_model_whose_inputs_declare_value_formats() -> None:
    data = pickle.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    plain, _ = bundle_requirements(data)
    assert "polars" not in plain.versions
    formatted, _ = bundle_requirements(data, reads_formats=True)
    assert formatted.versions["polars"][1] == version("polars")
