"""Load a pipeline spec from YAML with errors that point at the file, line and field.

YAML is composed into nodes first (safe loader: no Python object tags), so every key and list item
keeps its line number; pydantic validates the plain data; and each error's location is mapped back
to the nearest node that exists in the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlship.errors import SpecError
from mlship.spec.models import PipelineSpec, Source

Loc = tuple[str | int, ...]


class SpecLoader(yaml.SafeLoader):
    """YAML's safe loader with YAML 1.2 booleans: only true/false.

    YAML 1.1 reads `on`, `off`, `yes`, `no`, `y` and `n` as booleans, which turns the join key
    `on:` into `True` and the category label `yes` into a boolean. Specs mean the words.
    """


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


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
            raise ValueError(f"source {source.label!r} is a query, not a file")
        path = Path(source.path).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def spec_hash(self) -> str:
        """Hash of the spec's content (not its formatting or comments)."""
        canonical = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _line_index(node: yaml.Node, loc: Loc = ()) -> Iterator[tuple[Loc, int]]:
    """Yield (location, 1-based line) for every node under ``node``."""
    yield loc, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            yield (*loc, key), key_node.start_mark.line + 1
            for sub_loc, line in _line_index(value_node, (*loc, key)):
                if sub_loc != (*loc, key):
                    yield sub_loc, line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _line_index(item, (*loc, index))


def _field_name(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc``, to list the allowed field names."""
    model: type[BaseModel] | None = PipelineSpec
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


def _describe(error: Any) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        owner = _model_at(loc)
        allowed = ", ".join(owner.model_fields) if owner else "the documented fields"
        return f"unknown field; expected one of: {allowed}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    given = error.get("input")
    if not isinstance(given, dict | list):
        message += f" (got {given!r})"
    return message


class _Locator:
    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.lines = dict(_line_index(root)) if root is not None else {}

    def line_of(self, loc: Loc) -> int:
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 1

    def error(self, loc: Loc, message: str) -> str:
        return f"{self.path}, line {self.line_of(loc)}, field {_field_name(loc)}: {message}"


def parse_spec(text: str, path: Path) -> LoadedSpec:
    """Validate spec ``text`` (the content of ``path``) or raise :class:`SpecError`."""
    try:
        root = yaml.compose(text, Loader=SpecLoader)
        data = yaml.load(text, Loader=SpecLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise SpecError(f"{path}, line {line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from None
    locator = _Locator(path, root)
    if not isinstance(data, dict):
        raise SpecError(f"{path}, line 1: expected a mapping of fields such as name, task, sources")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = [locator.error(tuple(e["loc"]), _describe(e)) for e in exc.errors()]
        raise SpecError("\n".join(problems)) from None
    problems = [locator.error(loc, message) for loc, message in check_consistency(spec)]
    if problems:
        raise SpecError("\n".join(problems))
    return LoadedSpec(spec=spec, path=path)


def load_spec(path: Path | str) -> LoadedSpec:
    """Read and validate the spec file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from None
    return parse_spec(text, path.resolve())


Problem = tuple[Loc, str]


def check_consistency(spec: PipelineSpec) -> list[Problem]:
    """Rules that span fields: one target, known estimators and metrics, usable column types."""
    return [*_check_columns(spec), *_check_sources(spec), *_check_models(spec)]


def _check_columns(spec: PipelineSpec) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, column in enumerate(spec.columns):
        if column.name in seen:
            message = f"duplicate column {column.name!r} (see columns[{seen[column.name]}])"
            problems.append((("columns", index, "name"), message))
        seen.setdefault(column.name, index)
    problems.extend(_check_transforms(spec))
    targets = [i for i, c in enumerate(spec.columns) if c.role == "target"]
    if len(targets) != 1:
        message = f"expected exactly one column with role target, found {len(targets)}"
        problems.append((("columns",), message))
    elif spec.task == "regression" and spec.columns[targets[0]].type not in ("integer", "float"):
        message = "a regression target must be of type integer or float"
        problems.append((("columns", targets[0], "type"), message))
    if not spec.features:
        problems.append((("columns",), "expected at least one column with role feature"))
    return problems


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
    return problems
