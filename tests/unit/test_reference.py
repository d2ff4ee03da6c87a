"""The generated reference: in step with the code, and built from the models themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from mlship.reference import REFERENCE_PATH, REGENERATE, reference, spec_sections
from mlship.spec.data import Strict
from mlship.train.catalog import CATALOG
from mlship.train.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_reference_is_what_the_code_generates() -> None:
    committed = (ROOT / REFERENCE_PATH).read_text(encoding="utf-8")
    assert committed == reference(), (
        f"{REFERENCE_PATH} is out of date with the code: regenerate it with "
        f"`{REGENERATE}` (from the repository root) and commit the result"
    )


def test_the_readme_links_the_reference() -> None:
    assert f"]({REFERENCE_PATH.as_posix()})" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_metric_catalog_model_and_spec_model_is_in_it() -> None:
    text = reference()
    for task, metrics in METRICS.items():
        for name in metrics:
            assert f"| `{name}` | {task} |" in text
    for task, entries in CATALOG.items():
        for name, dotted in entries.items():
            assert f"| `{name}` | {task} | `{dotted}` |" in text
    for heading in ("### Split", "### ColumnCheck", "### TableChecks", "### Column", "## Metrics"):
        assert heading in text
    assert "| `group` | string or null | null | Column whose values never span two folds. |" in text
    assert "`feature`, `target`, `id`, `ignore`, `pii`" in text


class _Leak(Strict):
    """How a leak is judged."""

    action: Literal["warn", "fail"] = Field("warn", description="What a suspect does to a run.")
    threshold: float = Field(0.95, gt=0, le=1, description="Score alone that is suspicious.")


class _Spec(Strict):
    leakage: _Leak = Field(default_factory=_Leak, description="Leakage checks.")
    refit: Literal["all", "train"] = Field("all", description="What the shipped model sees.")
    weights: list[_Leak] | None = None


def test_a_new_key_appears_without_touching_the_generator() -> None:
    """Keys added to a spec model (nested, listed, optional) are found by walking the models."""
    text = spec_sections(_Spec)
    assert "| `refit` | `all` or `train` | `all` | What the shipped model sees. |" in text
    assert "| `leakage` | [_Leak](#_leak) | its defaults | Leakage checks. |" in text
    assert "| `weights` | list of [_Leak](#_leak) or null | null |  |" in text
    assert "### _Leak\n\nHow a leak is judged." in text
    assert (
        "| `threshold` | number (above 0, at most 1) | `0.95` | Score alone that is suspicious. |"
        in text
    )
    assert "| `action` | `warn` or `fail` | `warn` | What a suspect does to a run. |" in text
    assert text.count("### _Leak") == 1
