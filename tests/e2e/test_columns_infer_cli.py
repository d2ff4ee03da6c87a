"""Columns the spec does not declare, through the CLI: listed when left out (run, data validate,
runs show, the data report), and with ``columns: {infer: true}`` inferred, recorded and the same
every time the same data is read."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import invoke_cli

_MODELS = """models:
  - {name: baseline, estimator: logistic_regression, params: {max_iter: 1000}}
split: {holdout: 0.2, folds: 3, seed: 7}
metric: balanced_accuracy
"""


def _breast_cancer(directory: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    path = directory / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    return path


def _said(text: str) -> str:
    return " ".join(text.split())


def _dataset_hash(stdout: str) -> str:
    found = re.search(r"Dataset ([0-9a-f]{12}): 569 rows", stdout)
    assert found is not None, stdout
    return found.group(1)


def test_a_spec_of_only_infer_and_a_target_runs_and_infers_the_same_every_time(
    tmp_path: Path,
) -> None:
    _breast_cancer(tmp_path)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: cancer\ntask: classification\nsources: [{path: cancer.csv}]\n"
        "target: target\ncolumns: {infer: true}\n" + _MODELS
    )
    ran = invoke_cli("run", "pipeline.yaml", home=tmp_path / "home", cwd=tmp_path)
    said = _said(ran.stdout)
    assert (
        "31 column(s) the spec does not declare were inferred (columns: infer: true): "
        "mean radius (float, feature), mean texture (float, feature)"
    ) in said
    assert "target (category, target)" in said and "left out" not in said
    assert "Registered cancer:1" in said
    run_id = re.search(r"run ([0-9a-f]{8})", said)
    assert run_id is not None
    shown = _said(invoke_cli("runs", "show", run_id.group(1), home=tmp_path / "home").stdout)
    assert "31 column(s) the spec does not declare were inferred" in shown

    # Another workspace reads the same file afresh: the same columns, so the same dataset.
    again = invoke_cli("run", "pipeline.yaml", home=tmp_path / "other", cwd=tmp_path)
    assert "inputs unchanged" not in again.stdout
    assert _dataset_hash(again.stdout) == _dataset_hash(ran.stdout)
    show = _said(
        invoke_cli("data", "show", _dataset_hash(ran.stdout), home=tmp_path / "home").stdout
    )
    assert "569 × 31" in show


def test_columns_the_spec_does_not_declare_are_listed_as_left_out(tmp_path: Path) -> None:
    _breast_cancer(tmp_path)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: cancer\ntask: classification\nsources: [{path: cancer.csv}]\ncolumns:\n"
        "  - {name: mean radius, type: float}\n  - {name: mean texture, type: float}\n"
        "  - {name: target, type: category, role: target}\n" + _MODELS
    )
    home = tmp_path / "home"
    expected = (
        "28 columns in the sources are not in the spec and were left out: mean perimeter, "
        "mean area, mean smoothness,"
    )
    validated = invoke_cli("data", "validate", "pipeline.yaml", home=home, cwd=tmp_path)
    assert expected in _said(validated.stdout)
    assert "worst fractal dimension — declare them, or add `infer: true` under columns" in _said(
        validated.stdout
    )
    report = (home / "reports" / "cancer-data.html").read_text()
    assert "28 columns in the sources are not in the spec and were left out" in report
    ran = invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path)
    assert expected in _said(ran.stdout) and "Registered cancer:1" in ran.stdout


def test_inferred_and_declared_columns_together_with_a_bad_target(tmp_path: Path) -> None:
    (tmp_path / "shop.csv").write_text(
        "order_id,email,amount,channel,returned\n"
        + "".join(
            f"{i},p{i}@example.org,{'n/a' if i % 9 == 0 else f'{10 + i * 1.5:.2f}'},"
            f"{['web', 'store'][i % 2]},{'yes' if i % 3 == 0 else 'no'}\n"
            for i in range(90)
        )
    )
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: shop\ntask: classification\nsources: [{path: shop.csv}]\ntarget: returned\n"
        "columns:\n  infer: true\n  declared:\n    - {name: channel, type: category, checks: "
        "[{allowed: [web, store]}]}\n" + _MODELS + "card: {sensitive: [channel]}\n"
    )
    home = tmp_path / "home"
    ran = invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path)
    said = _said(ran.stdout)
    assert (
        "4 column(s) the spec does not declare were inferred (columns: infer: true): "
        "order_id (integer, id), email (string, pii), amount (float, feature), "
        "returned (boolean, target)"
    ) in said
    assert "Registered shop:1" in said
    # The card scores the run's test rows again: with the columns the run inferred.
    card = invoke_cli("models", "card", "shop:1", "-o", str(tmp_path / "cards"), home=home)
    assert "Fairness: " in card.stdout and "channel" in card.stdout

    regression = (
        spec.read_text()
        .replace("classification", "regression")
        .replace("balanced_accuracy", "r2")
        .replace("logistic_regression, params: {max_iter: 1000}", "ridge")
    )
    spec.write_text(regression)
    failed = invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path, check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert (
        "with the columns inferred from the data, the spec does not hold: column 'returned': "
        "a regression target must be of type integer or float"
    ) in _said(failed.stderr)
