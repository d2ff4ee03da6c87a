"""Load a pipeline spec from YAML with errors that point at the file, line and field.

The YAML side (safe loader, line numbers, error sentences) is :mod:`mlship.yamlfile`, shared with
the other files users write; this module holds what is particular to specs: the search-space
errors and the checks that span fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlship.errors import SpecError
from mlship.spec.models import Column, PipelineSpec, Source
from mlship.yamlfile import Problem, describe, parse, read_text


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from."""

    spec: PipelineSpec
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def source_path(self, source: Source) -> Path:
        """The local path of a file source (relative paths are relative to the spec file)."""
        if source.path is None:
            raise ValueError(f"source {source.label!r} is not a file")
        path = Path(source.path).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def spec_hash(self) -> str:
        """Hash of the spec's content (not its formatting or comments). The orchestration block
        says when a scheduler starts runs, not what a run does, so it is left out: a new
        schedule does not make the runs' specs differ."""
        content = self.spec.model_dump(mode="json", exclude={"orchestration"})
        canonical = json.dumps(content, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _describe(error: Any) -> str:
    return describe(error, PipelineSpec)


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[Problem]:
    """Each validation error as (location, message); a candidate's ``search`` is re-checked on
    its own, so its errors name the parameter and field instead of every shape it could take."""
    problems: list[Problem] = []
    searched: set[int] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        if len(loc) >= 3 and loc[0] == "models" and isinstance(loc[1], int) and loc[2] == "search":
            if loc[1] not in searched:
                searched.add(loc[1])
                raw = _raw_search(data, loc[1])
                found = [(("models", loc[1], "search", *sub), m) for sub, m in _search_errors(raw)]
                problems.extend(found or [(loc[:3], "not a valid search space")])
            continue
        problems.append((loc, _describe(error)))
    return problems


def _raw_search(data: dict[str, Any], index: int) -> Any:
    models = data.get("models")
    if isinstance(models, list) and index < len(models) and isinstance(models[index], dict):
        return models[index].get("search")
    return None


_SEARCH_VALUE = "{int: [low, high]}, {float: [low, high]}, {choice: [values]} or a list of values"


def _search_errors(raw: Any) -> list[Problem]:
    """Problems of a ``search`` value, located under it."""
    from mlship.spec.training import Choice, FloatRange, IntRange

    if not isinstance(raw, dict):
        message = f"expected default, or a mapping of parameter to {_SEARCH_VALUE} (got {raw!r})"
        return [((), message)]
    problems: list[Problem] = []
    for name, value in raw.items():
        if not isinstance(name, str):
            problems.append(((str(name),), "a parameter name must be text"))
            continue
        if isinstance(value, list):
            continue
        kinds = (("int", IntRange), ("float", FloatRange), ("choice", Choice))
        model = next((m for key, m in kinds if isinstance(value, dict) and key in value), None)
        if model is None:
            problems.append(((name,), f"expected {_SEARCH_VALUE} (got {value!r})"))
            continue
        try:
            model.model_validate(value)
        except ValidationError as exc:
            problems.extend(
                ((name, *error["loc"]), _describe_dimension(error, model)) for error in exc.errors()
            )
    return problems


def _describe_dimension(error: Any, model: type[BaseModel]) -> str:
    if error["type"] == "extra_forbidden":
        fields = [field.alias or name for name, field in model.model_fields.items()]
        return f"unknown field; expected one of: {', '.join(fields)}"
    loc = tuple(error["loc"])
    if loc[:1] in (("int",), ("float",)) and error["type"] in (
        "tuple_type",
        "missing",
        "too_long",
        "too_short",
    ):
        return f"expected two numbers: [low, high] (got {error.get('input')!r})"
    return _describe(error)


def parse_spec(text: str, path: Path) -> LoadedSpec:
    """Validate spec ``text`` (the content of ``path``) or raise :class:`SpecError`."""
    data, locator = parse(text, path, SpecError)
    if not isinstance(data, dict):
        raise SpecError(f"{path}, line 1: expected a mapping of fields such as name, task, sources")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(locator.errors(_in_file(_problems(exc, data), data))) from None
    problems = check_consistency(spec)
    if problems:
        raise SpecError(locator.errors(_in_file(problems, data)))
    return LoadedSpec(spec=spec, path=path)


def _in_file(problems: list[Problem], data: dict[str, Any]) -> list[Problem]:
    """Problems located where the file has them: with ``columns`` written as a mapping, the
    declared columns are under ``columns.declared`` and the flag is ``columns.infer``."""
    if not isinstance(data.get("columns"), dict):
        return problems
    located: list[Problem] = []
    for loc, message in problems:
        where = loc
        if loc[:1] == ("infer_columns",):
            where = ("columns", "infer", *loc[1:])
        elif len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int):
            where = ("columns", "declared", *loc[1:])
        located.append((where, message))
    return located


def load_spec(path: Path | str) -> LoadedSpec:
    """Read and validate the spec file at ``path``."""
    path = Path(path)
    text = read_text(path, "spec file", SpecError)
    return parse_spec(text, path.resolve())


def check_consistency(spec: PipelineSpec) -> list[Problem]:
    """Rules that span fields: one target, known estimators and metrics, usable column types,
    search spaces the estimators take, and splits and options that fit the task and columns."""
    return [
        *_check_columns(spec),
        *_check_sources(spec),
        *_check_models(spec),
        *_check_training(spec),
        *_check_card(spec),
        *_check_gate(spec),
        *_check_weight_and_target_transform(spec),
        *_check_leakage(spec),
    ]


def _check_columns(spec: PipelineSpec) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, column in enumerate(spec.columns):
        if column.name in seen:
            message = f"duplicate column {column.name!r} (see columns[{seen[column.name]}])"
            problems.append((("columns", index, "name"), message))
        seen.setdefault(column.name, index)
    problems.extend(_check_transforms(spec))
    problems.extend(_check_target(spec))
    for index, column in enumerate(spec.columns):
        if column.positive is None:
            continue
        if column.role != "target" or spec.task != "classification":
            message = "positive names the positive class of a classification target only"
            problems.append((("columns", index, "positive"), message))
    if not spec.features and not spec.infer_columns:
        problems.append((("columns",), "expected at least one column with role feature"))
    return problems


def _check_target(spec: PipelineSpec) -> list[Problem]:
    """One target: declared with role target, or named by ``target`` (declared or, with
    ``columns: {infer: true}``, inferred); a regression's is a number."""
    targets = [i for i, c in enumerate(spec.columns) if c.role == "target"]
    named = spec.target_column
    if len(targets) > 1 or (not targets and named is None):
        message = f"expected exactly one column with role target, found {len(targets)}"
        if spec.infer_columns:
            message += "; name the column to predict with `target: COLUMN`"
        return [(("columns",), message)]
    if named is not None:
        declared = {c.name: i for i, c in enumerate(spec.columns)}
        if named in declared and spec.columns[declared[named]].role != "target":
            role = spec.columns[declared[named]].role
            message = (
                f"column {named!r} is the target (target: {named}) but is declared with role "
                f"{role}; remove its role, or name another target"
            )
            return [(("columns", declared[named], "role"), message)]
        if targets and spec.columns[targets[0]].name != named:
            message = (
                f"names {named!r}, but column {spec.columns[targets[0]].name!r} has role target; "
                "a spec has one target"
            )
            return [(("target",), message)]
        if named not in declared and not spec.infer_columns:
            message = (
                f"no declared column is called {named!r}; declare it, or take the columns the "
                "spec does not declare from the data with `columns: {infer: true}`"
            )
            return [(("target",), message)]
    if (
        targets
        and spec.task == "regression"
        and spec.columns[targets[0]].type not in ("integer", "float")
    ):
        message = "a regression target must be of type integer or float"
        return [(("columns", targets[0], "type"), message)]
    return []


def _check_transforms(spec: PipelineSpec) -> list[Problem]:
    """Each transform option fits its column's type, and no estimator is handed missing values.

    Which options fit which column lives with the code that compiles them (``features.plan``),
    so the loader refuses exactly what the pipeline could not build.
    """
    from mlship.features.plan import leaves_missing_values, transform_problems

    problems: list[Problem] = [
        (("columns", index, *loc), message)
        for index, column in enumerate(spec.columns)
        for loc, message in transform_problems(column)
    ]
    unimputed = [
        index
        for index, column in enumerate(spec.columns)
        if column.role == "feature" and leaves_missing_values(column)
    ]
    refusing = _candidates_refusing_missing_values(spec) if unimputed else []
    if refusing:
        message = (
            f"impute: none leaves missing values, which {', '.join(refusing)} cannot take; "
            "choose an imputation, set nullable: false, or use an estimator that handles "
            "missing values (such as hist_gradient_boosting)"
        )
        problems.extend((("columns", index, "transform", "impute"), message) for index in unimputed)
    return problems


def _candidates_refusing_missing_values(spec: PipelineSpec) -> list[str]:
    """Candidates whose estimator does not declare that it accepts NaN in its input."""
    from mlship.train.catalog import EstimatorLookupError, build_estimator

    refusing = []
    for model in spec.models:
        try:
            estimator = build_estimator(model.estimator, spec.task, model.params)
        except EstimatorLookupError:
            continue  # reported by _check_models
        try:
            allows_nan = bool(estimator.__sklearn_tags__().input_tags.allow_nan)
        except AttributeError:
            allows_nan = False
        if not allows_nan:
            refusing.append(repr(model.label))
    return refusing


def _check_sources(spec: PipelineSpec) -> list[Problem]:
    """Formats known, names unique, joins and rules that refer to things that exist and parse."""
    from mlship.data.mapping import check_expression

    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, source in enumerate(spec.sources):
        if source.path is not None and source.resolved_format is None:
            message = (
                "cannot tell the format from the suffix; set format: csv, parquet, json or jsonl"
            )
            problems.append((("sources", index, "path"), message))
        if source.label in seen:
            message = f"two sources are called {source.label!r}; give each a distinct name"
            problems.append((("sources", index, "name"), message))
        seen.setdefault(source.label, index)
        for name, expr in source.mapping.derive.items():
            reason = check_expression(expr)
            if reason:
                problems.append((("sources", index, "mapping", "derive", name), reason))
    for index, rule in enumerate(spec.checks.rules):
        reason = check_expression(rule.expr)
        if reason:
            problems.append((("checks", "rules", index, "expr"), reason))
    return problems + _check_combine(spec, seen)


def _check_combine(spec: PipelineSpec, seen: dict[str, int]) -> list[Problem]:
    problems: list[Problem] = []
    combine = spec.combine
    if combine.base is not None and combine.base not in seen:
        problems.append((("combine", "base"), _unknown_source(combine.base, seen)))
    for index, join in enumerate(combine.joins):
        if join.source not in seen:
            problems.append(
                (("combine", "joins", index, "source"), _unknown_source(join.source, seen))
            )
    if combine.method == "join" and len(spec.sources) > 1 and not combine.joins:
        problems.append(
            (("combine", "joins"), "method join needs `joins`: how each source is joined")
        )
    if combine.conflicts is not None:
        for index, name in enumerate(combine.conflicts.prefer):
            if name not in seen:
                problems.append(
                    (("combine", "conflicts", "prefer", index), _unknown_source(name, seen))
                )
    return problems


def _unknown_source(name: str, known: dict[str, int]) -> str:
    return f"no source is called {name!r}; the sources are: {', '.join(known)}"


def _check_models(spec: PipelineSpec) -> list[Problem]:
    from mlship.train.catalog import EstimatorLookupError, build_estimator
    from mlship.train.metrics import METRICS, PROBABILITY_METRICS

    problems: list[Problem] = []
    known_metrics = METRICS[spec.task]
    if spec.metric not in known_metrics:
        expected = ", ".join(known_metrics)
        message = f"unknown {spec.task} metric {spec.metric!r}; expected one of: {expected}"
        problems.append((("metric",), message))
    labels: dict[str, int] = {}
    for index, model in enumerate(spec.models):
        if model.label in labels:
            message = f"two candidates are called {model.label!r}; give each a distinct name"
            problems.append((("models", index, "name"), message))
        labels.setdefault(model.label, index)
        try:
            estimator = build_estimator(model.estimator, spec.task, model.params)
        except EstimatorLookupError as exc:
            problems.append((("models", index, exc.field), str(exc)))
            continue
        if spec.metric in PROBABILITY_METRICS and not hasattr(estimator, "predict_proba"):
            message = (
                f"metric {spec.metric} needs class probabilities, "
                "which this estimator does not give with these params"
            )
            problems.append((("models", index, "estimator"), message))
        problems.extend(_check_search(spec, index, type(estimator)))
    problems.extend(_check_teachers(spec, labels))
    return problems


def _check_teachers(spec: PipelineSpec, labels: dict[str, int]) -> list[Problem]:
    """A student names another candidate of the spec as its teacher, one that learns the
    target itself (a teacher that is a student would learn from a model learning from a model)."""
    problems: list[Problem] = []
    for index, model in enumerate(spec.models):
        teacher = model.distilled_from
        if teacher is None:
            continue
        where = ("models", index, "distilled_from")
        if teacher == model.label:
            problems.append((where, f"candidate {teacher!r} cannot be distilled from itself"))
        elif teacher not in labels:
            known = ", ".join(repr(name) for name in labels)
            message = f"no candidate is called {teacher!r}; the candidates are: {known}"
            problems.append((where, message))
        elif spec.models[labels[teacher]].distilled_from is not None:
            message = f"candidate {teacher!r} is itself distilled; a teacher must learn the target"
            problems.append((where, message))
    return problems


def _check_search(spec: PipelineSpec, index: int, estimator_class: type[Any]) -> list[Problem]:
    """The candidate's search space exists and names parameters the estimator takes, with
    values it accepts, none of them also fixed in ``params``."""
    from mlship.train.spaces import SpaceError, resolve_space, space_problems

    model = spec.models[index]
    if model.search is None:
        return []
    try:
        space = resolve_space(model, spec.task)
    except SpaceError as exc:
        return [(("models", index, "search"), str(exc))]
    return [
        (("models", index, "search", name), message)
        for name, message in space_problems(space, estimator_class, model.params)
    ]


_EXECUTOR = re.compile(
    r"^(?:inline|process|ray|ray://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>[0-9]{1,5}))$"
)


def _check_training(spec: PipelineSpec) -> list[Problem]:
    """The split names usable columns and suits the task; imbalance handling only for
    classification; an executor mlship knows."""
    problems = [*_check_split(spec), *_check_imbalance(spec)]
    match = _EXECUTOR.match(spec.executor)
    if match is None or not 0 < int(match.group("port") or 1) < 65536:
        message = (
            "expected inline, process, ray, or ray://host:port for a Ray cluster "
            f"(got {spec.executor!r})"
        )
        problems.append((("executor",), message))
    return problems


def _check_split(spec: PipelineSpec) -> list[Problem]:
    split = spec.split
    columns = {column.name: column for column in spec.columns}
    problems: list[Problem] = []
    if split.method == "stratified_kfold" and spec.task == "regression":
        message = "stratified_kfold keeps class proportions, which a regression has not; use kfold"
        problems.append((("split", "method"), message))
    if split.group is not None:
        reason = _split_column_problem(columns, split.group, "group rows", spec.infer_columns)
        if reason is None and split.method == "timeseries":
            reason = "split method timeseries orders rows by `time` and does not use `group`"
        if reason is not None:
            problems.append((("split", "group"), reason))
    if split.time is not None:
        reason = _split_column_problem(columns, split.time, "order rows", spec.infer_columns)
        column = columns.get(split.time)
        if reason is None and column is not None and column.type not in _TIME_TYPES:
            reason = (
                f"column {split.time!r} is of type {column.type}; a time column must be of type "
                "datetime, integer or float"
            )
        if reason is None and split.method != "timeseries":
            reason = "`time` orders rows for split method timeseries only; set method: timeseries"
        if reason is not None:
            problems.append((("split", "time"), reason))
    return problems


_TIME_TYPES = ("datetime", "integer", "float")


def _split_column_problem(
    columns: dict[str, Column], name: str, purpose: str, inferred: bool = False
) -> str | None:
    """What keeps column ``name`` from serving ``purpose``; a column not declared may still be
    ``inferred`` from the data (it is checked again once it is)."""
    column = columns.get(name)
    if column is None:
        if inferred:
            return None
        return f"no column is called {name!r}; the columns are: {', '.join(columns)}"
    if column.role == "target":
        return f"the target cannot {purpose}; name another column"
    if column.role == "pii" and column.pii == "drop":
        return f"column {name!r} is dropped (pii: drop), so it cannot {purpose}"
    if column.role == "pii" and purpose == "order rows":
        return f"column {name!r} is pseudonymized (role pii), so it cannot {purpose}"
    return None


def _check_card(spec: PipelineSpec) -> list[Problem]:
    """Sensitive columns are declared, kept in the dataset, and not the target; each once."""
    if spec.card is None:
        return []
    columns = {column.name: column for column in spec.columns}
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, name in enumerate(spec.card.sensitive):
        column = columns.get(name)
        if column is None and spec.infer_columns:
            continue  # checked once the columns are inferred
        if column is None:
            reason = f"no column is called {name!r}; the columns are: {', '.join(columns)}"
        elif column.role == "target":
            reason = "the target cannot be a sensitive column: slices compare its predictions"
        elif column.role == "pii" and column.pii == "drop":
            reason = f"column {name!r} is dropped (pii: drop), so the card cannot slice by it"
        elif name in seen:
            reason = f"column {name!r} is listed twice"
        else:
            seen.add(name)
            continue
        problems.append((("card", "sensitive", index), reason))
    return problems


def _check_gate(spec: PipelineSpec) -> list[Problem]:
    """The gate compares a metric of the spec's task (checked here, not first in the pipeline
    that runs `mlship gate` after the run)."""
    from mlship.train.metrics import METRICS

    if spec.gate is None or spec.gate.metric is None or spec.gate.metric in METRICS[spec.task]:
        return []
    expected = ", ".join(METRICS[spec.task])
    message = f"{spec.task} has no metric {spec.gate.metric!r}; expected one of: {expected}"
    return [(("gate", "metric"), message)]


def _check_weight_and_target_transform(spec: PipelineSpec) -> list[Problem]:
    """At most one numeric weight column, learnt from by every candidate and not resampled
    away; a target transform on a regression target only."""
    problems: list[Problem] = []
    weights = [i for i, c in enumerate(spec.columns) if c.role == "weight"]
    if len(weights) > 1:
        message = f"expected at most one column with role weight, found {len(weights)}"
        problems.append((("columns", weights[1], "role"), message))
    for index in weights:
        if spec.columns[index].type not in ("integer", "float"):
            message = "a weight column holds sample weights, so it must be of type integer or float"
            problems.append((("columns", index, "type"), message))
    for index, column in enumerate(spec.columns):
        if column.target_transform is not None and (
            column.role != "target" or spec.task != "regression"
        ):
            message = "target_transform applies to the target of a regression only"
            problems.append((("columns", index, "target_transform"), message))
    if not weights:
        return problems
    name = spec.columns[weights[0]].name
    for index, label in _without_sample_weight(spec):
        message = (
            f"candidate {label} cannot learn from sample weights, and column {name!r} has role "
            "weight; remove the candidate, or the weight role to train without weights"
        )
        problems.append((("models", index, "estimator"), message))
    if spec.imbalance.strategy not in ("none", "class_weight"):
        message = (
            f"strategy {spec.imbalance.strategy} resamples rows, which takes no account of the "
            f"sample weights in column {name!r}; use class_weight or none with a weight column"
        )
        problems.append((("imbalance", "strategy"), message))
    return problems


def _without_sample_weight(spec: PipelineSpec) -> list[tuple[int, str]]:
    """Candidates whose estimator's ``fit`` takes no ``sample_weight`` (unknown ones are
    skipped: the model checks report them)."""
    from mlship.train.catalog import EstimatorLookupError, resolve_estimator_class
    from mlship.train.weighting import accepts_sample_weight

    found = []
    for index, model in enumerate(spec.models):
        try:
            estimator_class = resolve_estimator_class(model.estimator, spec.task)
        except EstimatorLookupError:
            continue
        if not accepts_sample_weight(estimator_class):
            label = repr(model.label)
            if model.label != model.estimator:
                label += f" ({model.estimator})"
            found.append((index, label))
    return found


def _check_leakage(spec: PipelineSpec) -> list[Problem]:
    """Columns allowed past the leakage screen are features (only features are screened)."""
    features = [column.name for column in spec.features]
    problems: list[Problem] = []
    for index, name in enumerate(spec.leakage.allow):
        if name not in features:
            reason = (
                f"no feature column is called {name!r}; only features are screened for leakage, "
                f"and the features are: {', '.join(features)}"
            )
            problems.append((("leakage", "allow", index), reason))
    return problems


def _without_class_weight(spec: PipelineSpec) -> list[str]:
    """Candidates whose estimator has no ``class_weight`` parameter (unknown ones are skipped:
    the model checks report them)."""
    from mlship.train.catalog import EstimatorLookupError, resolve_estimator_class

    found = []
    for model in spec.models:
        try:
            accepted = resolve_estimator_class(model.estimator, spec.task)().get_params()
        except (EstimatorLookupError, TypeError):
            continue
        if "class_weight" not in accepted:
            found.append(f"{model.label} ({model.estimator})")
    return found


def _check_imbalance(spec: PipelineSpec) -> list[Problem]:
    from mlship.train.metrics import METRICS, PROBABILITY_METRICS

    imbalance = spec.imbalance
    problems: list[Problem] = []
    if spec.task != "classification":
        if imbalance.strategy != "none":
            message = (
                f"strategy {imbalance.strategy} balances classes, so it applies to "
                "classification only; the task is regression"
            )
            problems.append((("imbalance", "strategy"), message))
        if imbalance.threshold is not None:
            message = "a decision threshold applies to classification only; the task is regression"
            problems.append((("imbalance", "threshold"), message))
    if imbalance.strategy == "class_weight" and spec.task == "classification":
        unweighted = _without_class_weight(spec)
        if unweighted:
            message = (
                f"class_weight needs estimators that take class weights; "
                f"{', '.join(unweighted)} do(es) not: use oversample, undersample, smote or "
                "adasyn, which work with any estimator"
            )
            problems.append((("imbalance", "strategy"), message))
    if imbalance.ratio is not None and imbalance.strategy in ("none", "class_weight"):
        message = (
            "ratio sets the class balance after resampling; it needs strategy oversample, "
            "undersample, smote or adasyn"
        )
        problems.append((("imbalance", "ratio"), message))
    if imbalance.threshold is not None and spec.task == "classification":
        label_metrics = [m for m in METRICS["classification"] if m not in PROBABILITY_METRICS]
        if imbalance.threshold.metric not in label_metrics:
            message = (
                f"the threshold maximises a metric of predicted classes; expected one of: "
                f"{', '.join(label_metrics)} (got {imbalance.threshold.metric!r})"
            )
            problems.append((("imbalance", "threshold", "metric"), message))
    return problems
