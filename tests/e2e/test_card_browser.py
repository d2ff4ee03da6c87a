"""The model card and the run comparison in a real browser: Debian's headless Chromium opens each
page from disk; it logs no error, fetches nothing, runs no script and draws every chart at a real
size. Full-page screenshots are kept under the test's temporary directory (and copied to
``reports/screenshots/`` with ``MLSHIP_KEEP_SCREENSHOTS=1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from mlship.evaluation.compare import compare_runs
from mlship.evaluation.compare_page import write_comparison
from mlship.registry.card import build_card
from mlship.registry.card_page import write_card
from mlship.registry.lifecycle import SqlRegistry
from mlship.workspace import Workspace
from tests.browser import charts_have_size, chromium, open_report, screenshot
from tests.unit.test_compare_runs import runs
from tests.unit.test_model_card import carded

__all__ = ["carded", "runs"]  # fixtures used here


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_the_model_card_renders_cleanly_in_chromium(
    browser: Browser, carded: Workspace, tmp_path: Path
) -> None:
    version = carded.tracking.get_version("churn", 1)
    SqlRegistry(carded.metadata, "reviewer").add_note(
        "churn", 1, "Checked the slices with the **retention** team.\nNo blocker."
    )
    _, html_path = write_card(tmp_path / "cards", build_card(carded, version))
    page = open_report(browser, html_path)
    assert page.title() == "Model card: churn:1"
    for section in ("use", "limitations", "lineage", "metrics", "fairness", "notes"):
        assert page.locator(f"section#{section}").is_visible(), section
    labels = charts_have_size(page)
    assert labels == [
        "PR-AUC (average precision) by contract",
        "PR-AUC (average precision) by paperless_billing",
        "PR-AUC (average precision) by age",
    ]
    assert page.locator("table.slices").count() == 3
    assert page.locator("tr.flagged").count() >= 1  # the small age groups at least
    assert page.get_by_text("Rank customers for a retention call; not for pricing.").is_visible()
    assert page.get_by_text("Checked the slices with the **retention** team.").is_visible()
    screenshot(page, tmp_path / "model-card.png")
    page.close()


def test_the_run_comparison_renders_cleanly_in_chromium(
    browser: Browser, workspace: Workspace, runs: list[str], tmp_path: Path
) -> None:
    found = compare_runs([workspace.tracking.get_run(ref) for ref in runs])
    _, html_path = write_comparison(tmp_path / "compare", found)
    page = open_report(browser, html_path)
    assert page.title() == "Runs " + " vs ".join(found.labels)
    assert page.locator("section#table tr.differs").count() >= 3
    assert page.locator("td.best").count() >= 4
    assert len(charts_have_size(page)) == 4
    screenshot(page, tmp_path / "run-comparison.png")
    page.close()
