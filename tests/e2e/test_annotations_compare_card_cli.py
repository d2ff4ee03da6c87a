"""Owners, tags and notes, run comparison and model cards through the command line, on two real
runs of the churn example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import invoke_cli, run_cli, small_churn

CARD = """
card:
  intended_use: Rank customers for a retention call.
  limitations: [Synthetic customers]
  sensitive: [contract, paperless_billing]
"""


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two runs of the churn example by alice (churn:1 and churn:2, with a narrower search)."""
    root = tmp_path_factory.mktemp("annotated")
    spec = small_churn(root / "churn")
    spec.write_text(spec.read_text() + CARD)
    home = root / "home"
    alice = {"MLSHIP_USER": "alice"}
    run_cli("run", str(spec), home=home, cwd=root, env=alice)
    spec.write_text(spec.read_text().replace("[0.001, 100.0]", "[0.001, 0.01]"))
    run_cli("run", str(spec), home=home, cwd=root, env=alice)
    return root, home


def test_owners_tags_and_notes_of_runs(project: tuple[Path, Path]) -> None:
    root, home = project

    def cli(*args: str, user: str = "alice") -> str:
        result = invoke_cli(*args, home=home, cwd=root, env={"MLSHIP_USER": user})
        return _flat(result.stdout + result.stderr)

    first, newest = re.findall(r"│ ([0-9a-f]{8}) │ churn", cli("runs", "list"))[::-1]
    assert "alice" in cli("runs", "list")
    assert "tags: team=growth, ticket=ML-7" in cli(
        "runs", "tag", "churn", "team=growth", "ticket=ML-7"
    )
    assert f"Run {newest} tags: team=growth" in cli("runs", "tag", "churn", "--remove", "ticket")
    assert f"Run {first} is owned by bob" in cli("runs", "owner", first, "bob")

    by_bob = cli("runs", "list", "--owner", "bob")
    assert first in by_bob and newest not in by_bob
    tagged = cli("runs", "list", "--tag", "team=growth")
    assert newest in tagged and first not in tagged and "team=growth" in tagged

    cli("runs", "note", "churn", "## Why\n\nNarrower search, **stronger** regularisation.")
    notes = root / "notes.md"
    notes.write_text("- checked the *quarantine*\n- nothing odd\n")
    assert "added to run" in cli("runs", "note", "churn", "--file", str(notes), user="bob")
    shown = cli("runs", "show", "churn")
    assert "owner │ alice" in shown and "tags │ team=growth" in shown
    assert "Notes (2)" in shown and "alice," in shown and "bob," in shown
    assert "Why" in shown and "stronger regularisation" in shown and "**" not in shown
    assert "checked the quarantine" in shown

    bad = invoke_cli("runs", "tag", "churn", "oops", home=home, check=False)
    assert bad.returncode == 1 and "bad tag 'oops': expected KEY=VALUE" in bad.stderr
    empty = invoke_cli("runs", "note", "churn", home=home, check=False)
    assert empty.returncode == 1 and "give the note as TEXT or with --file" in _flat(empty.stderr)


def test_runs_compared_side_by_side(project: tuple[Path, Path]) -> None:
    root, home = project
    runs = re.findall(r"│ ([0-9a-f]{8}) │ churn", invoke_cli("runs", "list", home=home).stdout)
    newest, first = runs
    compared = invoke_cli("runs", "compare", first, "churn", "--html", str(root / "cmp"), home=home)
    text = _flat(compared.stdout)
    assert f"Runs {first} vs {newest}" in text
    for field in ("pipeline", "dataset", "spec", "best candidate", "C", "average_precision",
                  "wall seconds", "cost"):  # fmt: skip
        assert f"│ {field} " in text, field
    assert "*" in text  # the best value of each metric is starred
    html = root / "cmp" / f"compare-{first}-{newest}.html"
    assert "HTML: " in text and html.exists() and "<svg" in html.read_text()

    unknown = invoke_cli("runs", "compare", "churn", "nothere", home=home, check=False)
    assert unknown.returncode == 1
    assert "no run with id 'nothere'" in _flat(unknown.stderr)


def test_model_owner_notes_and_card(project: tuple[Path, Path]) -> None:
    root, home = project

    def cli(*args: str, user: str = "alice") -> str:
        result = invoke_cli(*args, home=home, cwd=root, env={"MLSHIP_USER": user})
        return _flat(result.stdout + result.stderr)

    assert re.search(r"churn │ 2 │ .* │ alice │ alice │ - │", cli("models", "list"))
    assert "churn: owner" in cli("models", "owner", "churn", "carol")
    assert "│ alice │ carol │ - │" in cli("models", "list", "--owner", "carol")
    assert "churn" not in cli("models", "list", "--owner", "nobody")
    cli("models", "tag", "churn", "team=growth")
    assert "│ carol │ team=growth │" in cli("models", "list", "--tag", "team=growth")

    assert "added to churn:2 by dave" in cli(
        "models", "note", "churn:2", "Reviewed: **fine** for staging.", user="dave"
    )
    shown = cli("models", "show", "churn:2")
    assert "model owner │ carol" in shown and "Notes (1)" in shown
    assert "Reviewed: fine for staging." in shown
    history = cli("models", "history", "churn")
    assert "noted" in history and "owner" in history and "previous=alice" in history

    out = root / "cards"
    written = cli("models", "card", "churn:2", "-o", str(out))
    assert "Fairness: " in written and "contract, paperless_billing" in written
    markdown = (out / "churn-2-card.md").read_text()
    assert markdown.startswith("# Model card: churn:2")
    expected = (
        "Rank customers for a retention call.",
        "Synthetic customers",
        "## Data lineage",
        "### contract",
        "### paperless_billing",
        "Reviewed: **fine** for staging.",
    )
    for part in expected:
        assert part in markdown, part
    assert "<svg" in (out / "churn-2-card.html").read_text()
