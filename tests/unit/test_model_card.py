"""Model cards: the test rows are split off the stored dataset again by the training code, so the
groups' metrics add up to the version's own test figures; slices are flagged when worse or small;
a spec without a ``card:`` section still gets the measured parts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship.config import Settings
from mlship.data.ingested import dataset_frame
from mlship.data.versioning import frame_hash
from mlship.evaluation.slices import MOST_VALUES, is_worse, slice_metrics
from mlship.registry.card import CardNote, build_card
from mlship.registry.card_page import render_card_html, render_card_markdown, write_card
from mlship.spec import load_spec
from mlship.train.run import execute, holdout_part
from mlship.workspace import Workspace
from tests.conftest import small_churn

CARD = """
card:
  intended_use: Rank customers for a retention call; not for pricing.
  limitations: [Synthetic customers of one country]
  sensitive: [contract, paperless_billing, age]
"""


@pytest.fixture(scope="module")
def carded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The small churn example trained once with a ``card:`` section (churn:1); read-only."""
    root = tmp_path_factory.mktemp("carded")
    spec = small_churn(root / "churn")
    spec.write_text(spec.read_text() + CARD)
    ws = Workspace.open(Settings(home=root / "ws", n_jobs=1, user="tester"))
    execute(load_spec(spec), ws)
    yield ws
    ws.close()


def test_the_stored_dataset_gives_back_the_run_s_test_rows(carded: Workspace) -> None:
    version = carded.tracking.get_version("churn", 1)
    run = carded.tracking.get_run(version.run_id)
    dataset = carded.tracking.get_dataset(version.dataset_hash)
    frame = dataset_frame(dataset, carded)
    assert frame_hash(frame) == dataset.data_hash
    card = build_card(carded, version)
    holdout = holdout_part(load_spec(Path(run.spec_path)).spec, frame)
    assert run.details is not None and len(holdout.y) == run.details["split"]["test_rows"]
    assert card.slices is not None and card.slices.rows == len(holdout.y)
    # Scored again from the stored model on the re-split rows: the registered test figures.
    for name, value in card.slices.overall.items():
        assert value == pytest.approx(version.metrics["holdout"][name], abs=1e-12), name


def test_every_value_of_every_sensitive_column_is_a_slice(carded: Workspace) -> None:
    card = build_card(carded, carded.tracking.get_version("churn", 1))
    slices = card.slices
    assert slices is not None
    assert slices.metric == "average_precision"
    assert slices.metrics == ("average_precision", "accuracy", "precision", "recall", "f1")
    assert slices.columns == ["contract", "paperless_billing", "age"]
    assert {p.value for p in slices.of("contract")} == {"month-to-month", "one-year", "two-year"}
    assert {p.value for p in slices.of("paperless_billing")} == {"True", "False"}
    for column in slices.columns:
        assert sum(p.rows for p in slices.of(column)) == slices.rows
    ages = slices.of("age")
    assert len(ages) == MOST_VALUES + 1 and slices.folded["age"] > 0  # the rest as "other"
    assert sum(p.value.startswith("other (") for p in ages) == 1
    assert all("." not in p.value for p in ages if p.value[0].isdigit())  # 34, not 34.0
    for piece in slices.slices:
        assert piece.small == (piece.rows < 30)
        for name in piece.worse:
            assert is_worse("classification", name, piece.metrics[name], slices.overall[name])


def test_the_card_says_what_people_declared_and_what_was_measured(
    carded: Workspace, tmp_path: Path
) -> None:
    version = carded.tracking.get_version("churn", 1)
    card = build_card(carded, version)
    assert card.intended_use.startswith("Rank customers")
    assert card.limitations == ["Synthetic customers of one country"]
    assert any("sensitive column contract is an input" in item for item in card.measured)
    assert any("fewer than 30 test rows" in item for item in card.measured)
    assert any("quarantined before training" in item for item in card.measured)
    lineage = card.lineage
    assert lineage["dataset"] == version.dataset_hash and lineage["run"] == version.run_id
    assert [s["name"] for s in lineage["sources"]] == ["crm", "billing", "support"]
    assert lineage["quarantined rows"] > 0 and lineage["test rows"] > 0
    assert card.metrics["holdout"] == version.metrics["holdout"]
    assert card.notes == []

    markdown = render_card_markdown(card)
    for heading in ("## Intended use", "## Limitations", "## Data lineage", "## Metrics",
                    "## Fairness slices", "### contract", "### age"):  # fmt: skip
        assert heading in markdown, heading
    md_path, html_path = write_card(tmp_path, card)
    assert (md_path.name, html_path.name) == ("churn-1-card.md", "churn-1-card.html")
    assert md_path.read_text() == markdown
    assert "<script" not in html_path.read_text()


def test_a_version_without_a_card_section_gets_the_measured_parts(
    trained: Workspace, tmp_path: Path
) -> None:
    card = build_card(trained, trained.tracking.get_version("churn", 1))
    assert card.intended_use == "" and card.limitations == [] and card.sensitive == []
    assert card.slices is None
    assert card.lineage["spec sha256"] and card.lineage["dataset"]
    markdown = render_card_markdown(card)
    assert "Not stated in the spec." in markdown
    assert "No sensitive columns are declared" in markdown
    assert "No sensitive columns are declared" in render_card_html(card)


def test_notes_and_descriptions_are_shown_and_escaped_in_the_page(carded: Workspace) -> None:
    """People's words reach the page as text: no markup, nothing fetched."""
    hostile = "<img src=x onerror=alert(1)> ![t](http://example.com/t.png)"
    card = build_card(carded, carded.tracking.get_version("churn", 1))
    card = replace(
        card, version_description=hostile, notes=[CardNote("bob", "2026-01-01", hostile)]
    )
    page = render_card_html(card)
    assert "<img" not in page and page.count("&lt;img src=x") == 2
    markdown = render_card_markdown(card)
    assert "### bob, 2026-01-01" in markdown and "**Version description:**" in markdown


def test_slices_of_a_small_frame() -> None:
    y = pd.Series(["yes", "no", "yes", "no", "no", "yes"] * 10)
    predictions = np.array(["yes", "no", "no", "no", "no", "yes"] * 10, dtype=object)
    group = pd.Series(["a", "a", "b", "b", None, "a"] * 10)
    report = slice_metrics(
        "classification", "recall", ["accuracy"], y, predictions, None, ["no", "yes"],
        {"group": group}, positive="yes",
    )  # fmt: skip
    assert report.overall == {"recall": pytest.approx(2 / 3), "accuracy": pytest.approx(5 / 6)}
    by_value = {p.value: p for p in report.of("group")}
    assert set(by_value) == {"a", "b", "(missing)"}
    assert by_value["a"].rows == 30 and not by_value["a"].small
    assert by_value["a"].metrics["recall"] == 1.0 and by_value["a"].worse == ()
    assert by_value["b"].metrics["recall"] == 0.0 and by_value["b"].worse == ("recall", "accuracy")
    assert by_value["(missing)"].small and by_value["(missing)"].metrics["accuracy"] == 1.0


def test_worse_respects_each_metric_s_direction_and_units() -> None:
    assert is_worse("classification", "accuracy", 0.80, 0.86)
    assert not is_worse("classification", "accuracy", 0.82, 0.86)
    assert is_worse("classification", "log_loss", 0.60, 0.50)
    assert not is_worse("classification", "log_loss", 0.40, 0.50)
    # Errors in the target's units: 5% of the overall error, whatever the scale.
    assert is_worse("regression", "rmse", 1060.0, 1000.0)
    assert not is_worse("regression", "rmse", 1040.0, 1000.0)
    assert is_worse("regression", "r2", 0.60, 0.70)
    assert not is_worse("regression", "r2", None, 0.70)
