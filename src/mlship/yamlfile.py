"""YAML files whose errors name the file, the line and the field.

Shared by every file a user writes (pipeline specs, alert rules): the text is composed into nodes
first (safe loader, so no Python object tags), which keeps the line of every key and list item;
pydantic validates the plain data; and each error's location is mapped back to the nearest node
that exists in the file, so ``rules[2].window`` becomes "rules.yaml, line 14, field
rules[2].window".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlship.errors import MlshipError

Loc = tuple[str | int, ...]
"""Where a value sits in the document: keys and list indexes from the top."""

Problem = tuple[Loc, str]
"""A location and what is wrong there."""


class Yaml12Loader(yaml.SafeLoader):
    """YAML's safe loader with YAML 1.2 booleans: only true/false.

    YAML 1.1 reads `on`, `off`, `yes`, `no`, `y` and `n` as booleans, which turns the join key
    `on:` into `True` and the category label `yes` into a boolean. Our files mean the words.
    """


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


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


def field_name(loc: Loc) -> str:
    """``("rules", 2, "window")`` as ``rules[2].window``, the way a user reads the file."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class Locator:
    """Maps locations in a parsed document to the lines they came from."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.lines = dict(_line_index(root)) if root is not None else {}

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest parent in the file (a missing field's owner)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 1

    def error(self, loc: Loc, message: str) -> str:
        return f"{self.path}, line {self.line_of(loc)}, field {field_name(loc)}: {message}"

    def errors(self, problems: list[Problem]) -> str:
        """All problems, one line each, in the order found."""
        return "\n".join(self.error(loc, message) for loc, message in problems)


def read_text(path: Path, what: str, error: type[MlshipError]) -> str:
    """The content of ``path``; ``what`` names the file in errors ("spec file", "rules file")."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None


def parse(text: str, path: Path, error: type[MlshipError]) -> tuple[Any, Locator]:
    """The plain data of YAML ``text`` and a :class:`Locator` for it; invalid YAML raises
    ``error`` naming the line."""
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
        data = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise error(f"{path}, line {line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from None
    return data, Locator(path, root)


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model under ``root`` that owns the field at ``loc``, to list its fields."""
    model: type[BaseModel] | None = root
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


def describe(error: Any, root: type[BaseModel]) -> str:
    """One pydantic error as a sentence: unknown fields list the allowed ones, wrong values
    show what was given."""
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        owner = model_at(root, loc)
        allowed = ", ".join(owner.model_fields) if owner else "the documented fields"
        return f"unknown field; expected one of: {allowed}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    given = error.get("input")
    if not isinstance(given, dict | list):
        message += f" (got {given!r})"
    return message


def validation_problems(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Each error of validating data against ``root``, located and described."""
    return [(tuple(error["loc"]), describe(error, root)) for error in exc.errors()]
