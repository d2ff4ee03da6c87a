"""The reference (docs/reference.md), generated from the code so it cannot fall behind it.

Every spec key comes from walking the pydantic models from :class:`PipelineSpec` down: each
field with its type, default and description, so a key added to a model appears after a
regeneration with nothing else to edit. Metrics come from :data:`mlship.train.metrics.METRICS`,
catalog models from :data:`mlship.train.catalog.CATALOG` with the parameters their default search
space tunes, column types and roles from the ``Literal`` types of :class:`Column`.

Regenerate with ``python -m mlship.reference`` (writes ``docs/reference.md`` under the current
directory, or the path given); a test fails when the committed file differs.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mlship.spec.data import Column
from mlship.spec.models import PipelineSpec
from mlship.spec.training import Dimension
from mlship.train.catalog import CATALOG, DEFAULT_PARAMS
from mlship.train.metrics import LABELS, METRICS, PROBABILITY_METRICS
from mlship.train.spaces import SPACES

REFERENCE_PATH = Path("docs/reference.md")
REGENERATE = "python -m mlship.reference"

_HEADER = f"""# mlship reference

Generated from the code by `{REGENERATE}`; do not edit by hand. Every spec key with its
type, default and meaning; every metric; every model of the catalog with the parameters its
default search space tunes; column types and roles; the stages of a CI pipeline; and the checks
a spec can declare.
"""


def _cell(text: str) -> str:
    """Text that stays in one cell of a markdown table."""
    return " ".join(text.split()).replace("|", "\\|")


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation names, however nested (lists, unions, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def _type(annotation: Any) -> str:
    """A field's type in words: ``integer``, ``list of Rule``, ```a` or `b` ``, ``... or null``."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{value}`" for value in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(argument) for argument in arguments)
    if origin in (list, tuple, dict):
        return _container(origin, arguments)
    return _plain(annotation)


def _container(origin: Any, arguments: tuple[Any, ...]) -> str:
    if origin is list:
        return f"list of {_type(arguments[0])}" if arguments else "list"
    if origin is tuple:
        return "pair of " + " and ".join(_type(a) for a in arguments if a is not Ellipsis)
    return f"mapping of {_type(arguments[0])} to {_type(arguments[1])}" if arguments else "mapping"


def _plain(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if annotation is Any:
        return "any value"
    if isinstance(annotation, type):
        return _NAMES.get(annotation, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _bounds(field: FieldInfo) -> str:
    """`` (2 to 50)``, ``(above 0)``: the limits pydantic checks on a number field."""
    found: dict[str, Any] = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    low = f"at least {found['ge']}" if "ge" in found else None
    low = f"above {found['gt']}" if "gt" in found else low
    high = f"at most {found['le']}" if "le" in found else None
    high = f"below {found['lt']}" if "lt" in found else high
    parts = [p for p in (low, high) if p]
    if "min_length" in found and found["min_length"] > 0:
        parts.append(f"at least {found['min_length']} long")
    return f" ({', '.join(parts)})" if parts else ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        made = field.default_factory()  # type: ignore[call-arg]
        if isinstance(made, BaseModel):
            return "its defaults"
        return f"`{made!r}`"
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "null"
    if isinstance(field.default, bool):
        return f"`{str(field.default).lower()}`"
    return f"`{field.default}`"


def _ordered_models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every model reachable from its fields, in the order first met."""
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for field in model.model_fields.values():
            for found in _models_in(field.annotation):
                visit(found)

    visit(root)
    return seen


def model_section(model: type[BaseModel], title: str | None = None) -> str:
    """One model's keys as a table: key, type, default, description."""
    lines = [f"### {title or model.__name__}", ""]
    doc = (model.__doc__ or "").strip()
    if doc:
        lines += [" ".join(doc.split()), ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        description = _cell(field.description or "")
        lines.append(
            f"| `{key}` | {_cell(_type(field.annotation) + _bounds(field))} "
            f"| {_cell(_default(field))} "
            f"| {description} |"
        )
    return "\n".join(lines) + "\n"


def spec_sections(root: type[BaseModel] = PipelineSpec) -> str:
    """Every model reachable from ``root``, each as :func:`model_section`."""
    return "\n".join(
        model_section(model, f"{model.__name__}" if model is not root else "Pipeline spec")
        for model in _ordered_models(root)
    )


def _anchor_fix(text: str, root: type[BaseModel]) -> str:
    return text.replace(f"(#{root.__name__.lower()})", "(#pipeline-spec)")


def metrics_section() -> str:
    lines = [
        "## Metrics",
        "",
        "The `metric` of a spec picks the best candidate by its CV score; every metric of the "
        "task is computed for every fold and for the test set.",
        "",
        "| metric | task | better | from probabilities | name in reports |",
        "|---|---|---|---|---|",
    ]
    for task, metrics in METRICS.items():
        for name, bigger in metrics.items():
            probability = "yes" if name in PROBABILITY_METRICS else "no"
            better = "higher" if bigger else "lower"
            label = _cell(LABELS.get(name, name))
            lines.append(f"| `{name}` | {task} | {better} | {probability} | {label} |")
    return "\n".join(lines) + "\n"


def _dimension(value: Dimension | list[Any]) -> str:
    data = value if isinstance(value, list) else value.model_dump(by_alias=True)
    if isinstance(data, dict) and "choice" in data:
        return ", ".join(map(str, data["choice"]))
    if isinstance(data, dict):
        low, high = data.get("int") or data.get("float") or ("?", "?")
        scale = " (log)" if data.get("log") else ""
        return f"{low} to {high}{scale}"
    return ", ".join(map(str, data))


def catalog_section() -> str:
    lines = [
        "## Model catalog",
        "",
        "A candidate's `estimator` is one of these names (or a dotted class path such as "
        "`sklearn.svm.SVC`). `search: default` tunes the parameters listed, over the ranges "
        "shown; `params` fix any of them instead.",
        "",
        "| estimator | task | class | starts from | tunes (`search: default`) |",
        "|---|---|---|---|---|",
    ]
    for task, entries in CATALOG.items():
        for name, dotted in entries.items():
            defaults = DEFAULT_PARAMS[task].get(name, {})
            start = ", ".join(f"`{k}={v}`" for k, v in defaults.items()) or "-"
            space = SPACES[task].get(name, {})
            tunes = "; ".join(f"`{p}`: {_dimension(d)}" for p, d in space.items()) or "-"
            lines.append(f"| `{name}` | {task} | `{dotted}` | {start} | {_cell(tunes)} |")
    return "\n".join(lines) + "\n"


def columns_section() -> str:
    fields = Column.model_fields
    types_ = typing.get_args(fields["type"].annotation)
    roles = typing.get_args(fields["role"].annotation)
    return "\n".join(
        [
            "## Column types and roles",
            "",
            "Column `type`: " + ", ".join(f"`{t}`" for t in types_) + ".",
            "",
            "Column `role`: " + ", ".join(f"`{r}`" for r in roles) + f" (default "
            f"`{fields['role'].default}`).",
            "",
        ]
    )


def ci_section() -> str:
    """The stages ``mlship ci init`` writes, from the one list every CI system's file uses."""
    from mlship.ci.files import SYSTEMS
    from mlship.ci.stages import SECRETS, Plan, stages

    plan = Plan(spec="SPEC", model="MODEL", python="3.12", install="mlship")
    lines = [
        "## CI pipeline stages",
        "",
        "`mlship ci init SYSTEM` writes these stages, in this order, for "
        + ", ".join(f"`{name}` (`{where}`)" for name, (where, _) in SYSTEMS.items())
        + "; secrets by name: "
        + ", ".join(f"`{name}`" for name in SECRETS)
        + ".",
        "",
        "| stage | commands | keeps | runs |",
        "|---|---|---|---|",
    ]
    for index, stage in enumerate(stages(plan)):
        commands = "<br>".join(f"`{_cell(line)}`" for line in stage.script)
        keeps = ", ".join(f"`{path}`" for path in stage.keeps) or "-"
        if stage.keep_on_failure:
            keeps += " (also when it fails)"
        when = ("first" if index == 0 else "after the stage before passed") + (
            ", on the default branch" if stage.default_branch_only else ""
        )
        lines.append(f"| {stage.title} | {commands} | {keeps} | {when} |")
    return "\n".join(lines) + "\n"


def reference() -> str:
    """The whole reference, as markdown."""
    spec = _anchor_fix(spec_sections(PipelineSpec), PipelineSpec)
    return (
        "\n".join(
            [
                _HEADER,
                metrics_section(),
                catalog_section(),
                columns_section(),
                ci_section(),
                "## Spec keys",
                "",
                "Each table is one part of a spec, from the top (`Pipeline spec`) down: its keys, "
                "their types, defaults and meaning. Checks of a column are "
                "[ColumnCheck](#columncheck); checks of the whole table are "
                "[TableChecks](#tablechecks); the split is [Split](#split).",
                "",
                spec,
            ]
        ).rstrip("\n")
        + "\n"
    )


def write_reference(path: Path = REFERENCE_PATH) -> Path:
    """Write the reference to ``path`` (through a temporary file, so a crash leaves the old)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(reference(), encoding="utf-8")
    temporary.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    written = write_reference(Path(arguments[0]) if arguments else REFERENCE_PATH)
    print(f"Wrote {written}")


if __name__ == "__main__":
    main()


__all__ = ["REFERENCE_PATH", "REGENERATE", "model_section", "reference", "spec_sections"]
