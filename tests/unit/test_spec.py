"""The spec loader: valid specs load; every mistake names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlship.errors import SpecError
from mlship.spec import load_spec, parse_spec

GOOD = """\
name: churn
task: classification
sources:
  - path: data/customers.csv
columns:
  - {name: id, type: string, role: id}
  - {name: age, type: integer}
  - {name: plan, type: category}
  - {name: churned, type: category, role: target}
models:
  - name: logistic
    estimator: logistic_regression
    params: {C: 0.5}
  - estimator: random_forest
    params:
      n_estimators: 50
split: {holdout: 0.25, folds: 3, seed: 1}
metric: roc_auc
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, Path("/project/pipeline.yaml"))
    return str(info.value)


def test_good_spec_loads_with_roles_and_defaults() -> None:
    loaded = parse_spec(GOOD, Path("/project/pipeline.yaml"))
    spec = loaded.spec
    assert spec.target.name == "churned"
    assert [c.name for c in spec.features] == ["age", "plan"]
    assert spec.models[1].label == "random_forest"
    assert spec.split.stratify is True
    assert loaded.source_path(spec.sources[0]) == Path("/project/data/customers.csv")


def test_spec_hash_ignores_comments_and_layout() -> None:
    first = parse_spec(GOOD, Path("a.yaml")).spec_hash
    reformatted = "# a comment\n" + GOOD.replace(
        "{holdout: 0.25, folds: 3, seed: 1}", "\n  holdout: 0.25\n  folds: 3\n  seed: 1"
    )
    assert parse_spec(reformatted, Path("b.yaml")).spec_hash == first
    assert parse_spec(GOOD.replace("C: 0.5", "C: 0.6"), Path("a.yaml")).spec_hash != first


def test_unknown_field_names_line_field_and_allowed_fields() -> None:
    message = _error(
        GOOD.replace("    params:\n      n_estimators", "    parms:\n      n_estimators")
    )
    assert message.startswith("/project/pipeline.yaml, line 15, field models[1].parms:")
    assert "unknown field; expected one of: name, estimator, params" in message


def test_wrong_type_names_line_field_and_expectation() -> None:
    message = _error(GOOD.replace("folds: 3", "folds: three"))
    assert "line 17, field split.folds:" in message
    assert "valid integer" in message
    assert "'three'" in message


def test_missing_required_field() -> None:
    message = _error(GOOD.replace("task: classification\n", ""))
    assert "field task: required field is missing" in message


def test_bad_choice_lists_the_allowed_values() -> None:
    message = _error(GOOD.replace("task: classification", "task: clustering"))
    assert "line 2, field task:" in message
    assert "'classification' or 'regression'" in message


def test_bad_column_type_points_at_the_column() -> None:
    message = _error(GOOD.replace("{name: age, type: integer}", "{name: age, type: int64}"))
    assert "line 7, field columns[1].type:" in message
    assert "'integer'" in message


def test_unknown_estimator_lists_the_catalog() -> None:
    message = _error(GOOD.replace("estimator: random_forest", "estimator: random_jungle"))
    assert "line 14, field models[1].estimator: unknown estimator 'random_jungle'" in message
    assert "hist_gradient_boosting" in message


def test_bad_estimator_parameter_is_caught_before_training() -> None:
    message = _error(GOOD.replace("n_estimators: 50", "n_trees: 50"))
    assert "field models[1].params:" in message
    assert "n_trees" in message
    bad_value = _error(GOOD.replace("n_estimators: 50", "n_estimators: -3"))
    assert "field models[1].params:" in bad_value
    assert "n_estimators" in bad_value


def test_regressor_for_a_classification_task_is_refused() -> None:
    message = _error(
        GOOD.replace("estimator: random_forest", "estimator: sklearn.linear_model.Ridge")
    )
    assert "is a regressor, but the task is classification" in message


def test_metric_must_suit_the_task() -> None:
    message = _error(GOOD.replace("metric: roc_auc", "metric: rmse"))
    assert "line 18, field metric: unknown classification metric 'rmse'" in message


def test_metric_needing_probabilities_refuses_an_estimator_without_them() -> None:
    message = _error(
        GOOD.replace(
            "estimator: random_forest\n    params:\n      n_estimators: 50", "estimator: svm"
        )
    )
    assert "field models[1].estimator: metric roc_auc needs class probabilities" in message


def test_exactly_one_target() -> None:
    message = _error(GOOD.replace("role: target", "role: feature"))
    assert "field columns: expected exactly one column with role target, found 0" in message


def test_duplicate_columns() -> None:
    message = _error(GOOD.replace("{name: plan, type: category}", "{name: age, type: datetime}"))
    assert "columns[2].name: duplicate column 'age'" in message


def test_yaml_words_are_words_not_booleans() -> None:
    spec = GOOD.replace(
        "plan, type: category}", "plan, type: category, checks: [{allowed: [yes, no, on]}]}"
    )
    loaded = parse_spec(spec, Path("/project/pipeline.yaml"))
    assert loaded.spec.columns[2].checks[0].allowed == ["yes", "no", "on"]


def test_yaml_syntax_error_gives_the_line() -> None:
    message = _error(GOOD.replace("metric: roc_auc", "metric: [roc_auc"))
    assert message.startswith("/project/pipeline.yaml, line 19: invalid YAML")


def test_python_tags_are_not_executed() -> None:
    message = _error(GOOD.replace("name: churn", "name: !!python/object/apply:os.system ['true']"))
    assert "invalid YAML" in message


def test_every_problem_is_reported_at_once() -> None:
    message = _error(GOOD.replace("folds: 3", "folds: 1").replace("holdout: 0.25", "holdout: 2"))
    assert "split.folds" in message
    assert "split.holdout" in message


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"spec file .*nope.yaml does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_the_shipped_example_is_valid(churn_spec: Path) -> None:
    assert load_spec(churn_spec).spec.name == "churn"
