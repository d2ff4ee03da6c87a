"""What importing the command line and the scoring code costs: the heavy libraries stay out until a
command needs them, and models pickled before XGBLabelClassifier moved to its own module still load.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlship.train import estimators
from mlship.train.xgb import XGBLabelClassifier

HEAVY = {
    "sklearn",
    "scipy",
    "polars",
    "sqlalchemy",
    "alembic",
    "optuna",
    "ray",
    "pyarrow",
    "xgboost",
    "lightgbm",
    "imblearn",
    "psutil",
    "fsspec",
    "pandas",
    "numpy",
}
"""Top-level packages that ``mlship --help`` (and so every command) must not import."""


def imported_after(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running ``statement``."""
    code = (
        f"import json, sys\n{statement}\n"
        "print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(found.stdout))


def test_importing_the_command_line_imports_no_heavy_library() -> None:
    modules = imported_after("import mlship.cli.main")
    assert "typer" in modules  # the probe sees what was imported
    assert sorted(HEAVY & modules) == []


def test_importing_scoring_imports_neither_xgboost_nor_lightgbm() -> None:
    modules = imported_after("import mlship.train.scoring")
    assert "mlship" in modules
    assert sorted({"xgboost", "lightgbm"} & modules) == []


def test_a_model_pickled_under_the_old_module_path_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert estimators.XGBLabelClassifier is XGBLabelClassifier
    X = np.random.default_rng(0).random((40, 3))
    y = np.array(["no", "yes"] * 20, dtype=object)
    model = XGBLabelClassifier(n_estimators=3).fit(X, y)
    # Pickled as it was when the class was defined in mlship.train.estimators.
    monkeypatch.setattr(XGBLabelClassifier, "__module__", "mlship.train.estimators")
    old = pickle.dumps(model)
    monkeypatch.undo()
    assert b"mlship.train.estimators" in old and b"mlship.train.xgb" not in old

    restored = pickle.loads(old)
    assert type(restored) is XGBLabelClassifier
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))

    # And in a fresh interpreter, where nothing has imported mlship.train.xgb yet.
    path = tmp_path / "old.pkl"
    path.write_bytes(old)
    code = (
        "import pickle, sys\n"
        f"model = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "print(type(model).__module__, type(model).__name__, list(model.classes_))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert found.stdout.split() == ["mlship.train.xgb", "XGBLabelClassifier", "['no',", "'yes']"]
