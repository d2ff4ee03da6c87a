"""YAML text for pipeline files: keys in the order written, scripts as literal blocks.

Built from Python values and dumped, rather than filled into a text template, so quoting is the
YAML library's job and a file is always well-formed.
"""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings as ``|`` blocks."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(header: str, document: dict[str, Any]) -> str:
    """``document`` as YAML after ``header`` (each of its lines a comment)."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    return f"{comments}\n{body}"
