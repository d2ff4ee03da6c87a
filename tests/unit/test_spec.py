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
            "estimator: random_forest\n    params:\n      n_estimators: 50",
            "estimator: sklearn.svm.SVC",
        )
    )
    assert "field models[1].estimator: metric roc_auc needs class probabilities" in message


def test_the_catalog_svm_gives_probabilities() -> None:
    spec = GOOD.replace(
        "estimator: random_forest\n    params:\n      n_estimators: 50", "estimator: svm"
    )
    assert parse_spec(spec, Path("/project/pipeline.yaml")).spec.models[1].estimator == "svm"


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


# ---- search spaces, splits, tuning, imbalance, selection, executor ----------------------------

FOREST = "  - estimator: random_forest\n    params:\n      n_estimators: 50\n"


def _with_search(search: str) -> str:
    """GOOD with ``search`` (YAML lines under the forest, indented by 4) after its params."""
    return GOOD.replace(FOREST, FOREST + search)


def test_search_spaces_load_with_ranges_lists_and_default() -> None:
    spec = _with_search(
        "    search:\n"
        "      max_depth: [null, 4, 8]\n"
        "      min_samples_leaf: {int: [1, 20], log: true}\n"
        "      max_features: {float: [0.2, 1.0]}\n"
    ).replace("params: {C: 0.5}", "params: {C: 0.5}\n    search: default")
    models = parse_spec(spec, Path("/project/pipeline.yaml")).spec.models
    assert models[0].search == "default"
    assert isinstance(models[1].search, dict)
    assert models[1].search["max_depth"] == [None, 4, 8]


def test_unknown_search_parameter_names_its_line_and_a_close_match() -> None:
    message = _error(_with_search("    search:\n      max_dept: [4, 8]\n"))
    assert "line 18, field models[1].search.max_dept: not a parameter of " in message
    assert "did you mean 'max_depth'" in message


def test_a_parameter_both_fixed_and_searched_is_refused() -> None:
    message = _error(_with_search("    search:\n      n_estimators: {int: [10, 100]}\n"))
    assert "line 18, field models[1].search.n_estimators: fixed in params and also searched" in (
        message
    )


def test_search_default_leaves_out_the_fixed_params() -> None:
    spec = _with_search("    search: default\n")
    loaded = parse_spec(spec, Path("/project/pipeline.yaml"))
    from mlship.train.spaces import resolve_space

    space = resolve_space(loaded.spec.models[1], "classification")
    assert "n_estimators" not in space
    assert "max_depth" in space


def test_a_search_value_the_estimator_refuses_is_caught() -> None:
    message = _error(_with_search("    search:\n      min_samples_leaf: {int: [0, 5]}\n"))
    assert "line 18, field models[1].search.min_samples_leaf: 0 is not a valid value" in message


def test_malformed_search_dimensions_are_reported_plainly() -> None:
    message = _error(
        _with_search(
            "    search:\n"
            "      max_depth: 5\n"
            "      min_samples_leaf: {int: [1, 20], lg: true}\n"
            "      max_features: {float: [0.2]}\n"
        )
    )
    lines = message.splitlines()
    assert len(lines) == 3
    assert "line 18, field models[1].search.max_depth: expected {int: [low, high]}" in lines[0]
    assert "line 19, field models[1].search.min_samples_leaf.lg: unknown field" in lines[1]
    assert "expected one of: int, log, step" in lines[1]
    assert "line 20, field models[1].search.max_features.float" in lines[2]
    assert "expected two numbers: [low, high]" in lines[2]
    bad_word = _error(_with_search("    search: defaults\n"))
    assert "line 17, field models[1].search: expected default, or a mapping" in bad_word
    assert "union" not in bad_word + message


def test_log_int_range_cannot_have_a_step() -> None:
    message = _error(
        _with_search("    search:\n      max_depth: {int: [1, 64], log: true, step: 2}\n")
    )
    assert "line 18, field models[1].search.max_depth: Value error, a log-scale int range" in (
        message
    )


def test_dotted_estimator_with_default_search_must_give_its_space() -> None:
    spec = GOOD.replace(
        FOREST,
        "  - estimator: sklearn.linear_model.SGDClassifier\n    params: {loss: log_loss}\n"
        "    search: default\n",
    )
    message = _error(spec)
    assert "line 16, field models[1].search: there is no default search space for " in message
    assert "give the space" in message
    own = spec.replace("search: default", "search: {alpha: {float: [0.00001, 0.1], log: true}}")
    assert parse_spec(own, Path("/project/pipeline.yaml")).spec.models[1].search


def test_a_dotted_path_to_a_catalog_class_gets_its_default_space() -> None:
    spec = GOOD.replace(
        FOREST, "  - estimator: sklearn.ensemble.RandomForestClassifier\n    search: default\n"
    )
    parse_spec(spec, Path("/project/pipeline.yaml"))


SPLIT = "split: {holdout: 0.25, folds: 3, seed: 1}"


def test_split_group_must_name_a_declared_column() -> None:
    message = _error(GOOD.replace(SPLIT, "split: {group: customer}"))
    assert "line 17, field split.group: no column is called 'customer'" in message
    assert "the columns are: id, age, plan, churned" in message
    parse_spec(GOOD.replace(SPLIT, "split: {group: id}"), Path("/project/pipeline.yaml"))
    target = _error(GOOD.replace(SPLIT, "split: {group: churned}"))
    assert "line 17, field split.group: the target cannot group rows" in target


def test_split_time_must_be_a_datetime_or_number_column() -> None:
    with_time = GOOD.replace(
        "{name: age, type: integer}",
        "{name: age, type: integer}\n  - {name: seen_at, type: datetime}",
    )
    good = with_time.replace(SPLIT, "split: {method: timeseries, time: seen_at}")
    assert parse_spec(good, Path("/project/pipeline.yaml")).spec.split.time == "seen_at"
    assert parse_spec(good.replace("time: seen_at", "time: age"), Path("p.yaml"))
    wrong_type = _error(with_time.replace(SPLIT, "split: {method: timeseries, time: plan}"))
    assert "line 18, field split.time: column 'plan' is of type category" in wrong_type
    unknown = _error(with_time.replace(SPLIT, "split: {method: timeseries, time: when}"))
    assert "line 18, field split.time: no column is called 'when'" in unknown
    without_method = _error(with_time.replace(SPLIT, "split: {time: seen_at}"))
    assert "line 18, field split.time: `time` orders rows for split method timeseries" in (
        without_method
    )


def _regression(text: str) -> str:
    return (
        text.replace("task: classification", "task: regression")
        .replace(
            "{name: churned, type: category, role: target}",
            "{name: churned, type: float, role: target}",
        )
        .replace("metric: roc_auc", "metric: rmse")
        .replace("estimator: logistic_regression", "estimator: ridge")
        .replace("params: {C: 0.5}", "params: {alpha: 0.5}")
    )


def test_split_methods_that_do_not_fit_the_task_or_each_other() -> None:
    regression = _regression(GOOD)
    parse_spec(regression, Path("/project/pipeline.yaml"))
    stratified = _error(regression.replace(SPLIT, "split: {method: stratified_kfold}"))
    assert "line 17, field split.method: stratified_kfold keeps class proportions" in stratified
    both = _error(GOOD.replace(SPLIT, "split: {method: timeseries, time: age, group: id}"))
    assert "line 17, field split.group: split method timeseries orders rows by `time`" in both


def test_imbalance_handling_is_for_classification_only() -> None:
    spec = GOOD + "imbalance:\n  strategy: smote\n  threshold: {metric: f1}\n"
    parse_spec(spec, Path("/project/pipeline.yaml"))
    message = _error(_regression(spec))
    assert "line 20, field imbalance.strategy: strategy smote balances classes" in message
    assert "line 21, field imbalance.threshold: a decision threshold applies to classification" in (
        message
    )


def test_imbalance_ratio_and_threshold_metric() -> None:
    ratio = _error(GOOD + "imbalance: {strategy: class_weight, ratio: 0.5}\n")
    assert "line 19, field imbalance.ratio: ratio sets the class balance after resampling" in ratio
    metric = _error(GOOD + "imbalance:\n  threshold:\n    metric: roc_auc\n")
    assert "line 21, field imbalance.threshold.metric: the threshold maximises a metric" in metric


def test_a_grid_larger_than_the_trial_budget_is_fine() -> None:
    spec = _with_search("    search: default\n") + "tuning: {method: grid, trials: 3}\n"
    assert parse_spec(spec, Path("/project/pipeline.yaml")).spec.tuning.trials == 3


def test_selection_tolerance_cannot_be_negative() -> None:
    message = _error(GOOD + "selection:\n  rule: cheapest_within\n  tolerance: -0.1\n")
    assert "line 21, field selection.tolerance:" in message
    assert "greater than or equal to 0" in message


@pytest.mark.parametrize(
    "executor", ["inline", "process", "ray", "ray://head-node:10001", "ray://10.0.0.5:10001"]
)
def test_known_executors_load(executor: str) -> None:
    loaded = parse_spec(GOOD + f"executor: {executor}\n", Path("/project/pipeline.yaml"))
    assert loaded.spec.executor == executor


@pytest.mark.parametrize("executor", ["threads", "ray://head", "ray://head:99999", "ray:head:1"])
def test_unknown_executors_are_refused(executor: str) -> None:
    message = _error(GOOD + f"executor: {executor}\n")
    assert "line 19, field executor: expected inline, process, ray, or ray://host:port" in message


def test_class_weights_need_estimators_that_take_them() -> None:
    """A strategy that would silently do nothing for some candidate is refused, naming it."""
    text = GOOD + "imbalance: {strategy: class_weight}\n"
    text = text.replace("estimator: logistic_regression\n    params: {C: 0.5}", "estimator: knn")
    message = _error(text)
    assert "imbalance.strategy" in message and "knn" in message and "smote" in message


def test_positive_class_belongs_to_a_classification_target() -> None:
    message = _error(
        GOOD.replace("{name: plan, type: category}", "{name: plan, type: category, positive: x}")
    )
    assert (
        "columns[2].positive: positive names the positive class of a classification target"
        in message
    )


CARD = """\
card:
  intended_use: Rank customers for a retention call.
  limitations: [Trained on one country only]
  sensitive: [plan, age]
"""


def test_a_card_section_loads() -> None:
    card = parse_spec(GOOD + CARD, Path("/project/pipeline.yaml")).spec.card
    assert card is not None
    assert card.intended_use == "Rank customers for a retention call."
    assert card.limitations == ["Trained on one country only"]
    assert card.sensitive == ["plan", "age"]
    assert parse_spec(GOOD, Path("/project/pipeline.yaml")).spec.card is None


def test_card_mistakes_name_the_field() -> None:
    unknown = _error(GOOD + CARD.replace("[plan, age]", "[plan, region]"))
    assert "line 22, field card.sensitive[1]: no column is called 'region'" in unknown
    assert "the columns are: id, age, plan, churned" in unknown
    target = _error(GOOD + CARD.replace("[plan, age]", "[churned]"))
    assert "field card.sensitive[0]: the target cannot be a sensitive column" in target
    twice = _error(GOOD + CARD.replace("[plan, age]", "[plan, plan]"))
    assert "field card.sensitive[1]: column 'plan' is listed twice" in twice
    misspelt = _error(GOOD + CARD.replace("intended_use", "intended-use"))
    assert "line 20, field card.intended-use: unknown field" in misspelt
    assert "intended_use, limitations, sensitive" in misspelt
    not_a_list = _error(GOOD + CARD.replace("[Trained on one country only]", "one country"))
    assert "line 21, field card.limitations" in not_a_list


GATE = """\
gate:
  metric: roc_auc
  require: not_worse
  max_loss: 0.01
  budgets: {max_size_mb: 20}
"""


def test_a_gate_section_loads() -> None:
    gate = parse_spec(GOOD + GATE, Path("/project/pipeline.yaml")).spec.gate
    assert gate is not None
    assert (gate.metric, gate.require, gate.max_loss) == ("roc_auc", "not_worse", 0.01)
    assert gate.budgets.max_size_mb == 20 and gate.budgets.max_latency_ms is None
    assert parse_spec(GOOD, Path("/project/pipeline.yaml")).spec.gate is None


def test_gate_mistakes_name_the_field() -> None:
    metric = _error(GOOD + GATE.replace("roc_auc", "rmse"))
    assert "line 20, field gate.metric: classification has no metric 'rmse'" in metric
    no_margin = _error(GOOD + GATE.replace("  max_loss: 0.01\n", ""))
    assert "field gate: Value error, require: not_worse needs max_loss" in no_margin
    budget = _error(GOOD + GATE.replace("max_size_mb: 20", "max_size_mb: -1"))
    assert "line 23, field gate.budgets.max_size_mb: Input should be greater than 0" in budget
