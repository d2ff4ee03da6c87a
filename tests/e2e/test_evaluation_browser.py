"""The evaluation report in a real browser: Debian's headless Chromium opens the file from disk,
logs no error, fetches nothing, runs no script and draws every chart at a real size. A full-page
screenshot is kept under the test's temporary directory, and copied to
``reports/screenshots/`` in the repository when ``MLSHIP_KEEP_SCREENSHOTS=1``.

A missing browser fails the test: ``scripts/services.sh`` installs it (``make test`` runs that).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sklearn.linear_model import LogisticRegression, Ridge

from mlship.evaluation import write_evaluation_report
from tests.browser import charts_have_size, chromium, open_report
from tests.browser import screenshot as take_screenshot
from tests.unit.test_evaluation import RUN, cancer_data, diabetes_data, fit_case


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _report(task: str, directory: Path) -> Path:
    if task == "classification":
        case = fit_case("classification", *cancer_data(), LogisticRegression(max_iter=2000))
        evaluation = case.evaluate("roc_auc", seed=42)
        run = RUN
    else:
        case = fit_case("regression", *diabetes_data(), Ridge())
        evaluation = case.evaluate("rmse", seed=42)
        run = {
            **RUN,
            "pipeline": "diabetes",
            "model": "ridge",
            "estimator": "sklearn.linear_model.Ridge",
        }
    _, html_path = write_evaluation_report(directory, f"{task}-evaluation", evaluation, run)
    return html_path


@pytest.mark.parametrize(
    ("task", "screenshot", "charts"),
    [
        (
            "classification",
            "evaluation-report.png",
            ["ROC curve", "precision-recall curve", "calibration curve", "learning curve"],
        ),
        (
            "regression",
            "evaluation-report-regression.png",
            ["predicted against actual values", "residuals against predicted values"],
        ),
    ],
)
def test_the_report_renders_cleanly_in_chromium(
    browser: Browser, tmp_path: Path, task: str, screenshot: str, charts: list[str]
) -> None:
    html_path = _report(task, tmp_path / "reports")
    page = open_report(browser, html_path)
    assert page.title() == f"Evaluation: {task}-evaluation"

    interval_rows = page.locator("section#metrics td.ci").count()
    assert interval_rows >= 5
    labels = charts_have_size(page)
    assert len(labels) >= interval_rows + len(charts) + 1  # + permutation importance
    for name in [*charts, "permutation importance"]:
        assert any(label.startswith(name) for label in labels), name
    for section in ("metrics", "fit", "curves", "importance"):
        assert page.locator(f"section#{section}").is_visible()
    if task == "classification":
        assert page.locator("table.heat").is_visible()
    assert page.get_by_text("The test set was scored once").is_visible()

    take_screenshot(page, tmp_path / screenshot)
    page.close()


def test_the_leakage_panel_renders_and_no_good_fit_badge_shows(
    browser: Browser, tmp_path: Path
) -> None:
    """A column that is the diagnosis itself: the screen of the training part and the model's
    importance both name it; the page opens with the panel and withholds the verdict."""
    from mlship.spec.models import ColumnType
    from mlship.train import leakage
    from tests.unit.test_leakage import _spec

    X, y = cancer_data()
    X = X.rename(columns=lambda c: c.replace(" ", "_")).assign(
        review_score=(y == "malignant").astype(float)
    )
    case = fit_case("classification", X, y, LogisticRegression(max_iter=2000))
    kinds: dict[str, ColumnType] = dict.fromkeys(map(str, X.columns), "float")
    spec = _spec("classification", kinds)
    X_train, y_train = case.X_train.reset_index(drop=True), case.y_train.reset_index(drop=True)
    screening = leakage.screen(spec, X_train, y_train, case.folds)
    evaluation = case.evaluate("roc_auc", seed=42)
    details: dict[str, object] = {}
    leakage.conclude(screening, evaluation, details)
    _, html_path = write_evaluation_report(
        tmp_path / "reports", "leaky-evaluation", evaluation, RUN
    )
    page = open_report(browser, html_path)
    panel = page.locator("section#leakage")
    assert panel.is_visible()
    assert panel.get_by_role("heading", name="Possible target leakage").is_visible()
    assert panel.locator("tbody tr").count() >= 1
    assert panel.locator("code", has_text="review_score").first.is_visible()
    assert page.locator(".badge", has_text="possible leakage").first.is_visible()
    assert page.locator(".badge", has_text="a good fit").count() == 0
    take_screenshot(page, tmp_path / "evaluation-report-leakage.png")
    page.close()
