"""The evaluation report in a real browser: Debian's headless Chromium opens the file from disk,
logs no error, fetches nothing, runs no script and draws every chart at a real size. A full-page
screenshot is kept under the test's temporary directory, and copied to
``reports/screenshots/`` in the repository when ``MLSHIP_KEEP_SCREENSHOTS=1``.

A missing browser fails the test: ``scripts/services.sh`` installs it (``make test`` runs that).
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize, sync_playwright
from sklearn.linear_model import LogisticRegression, Ridge

from mlship.evaluation import write_evaluation_report
from tests.unit.test_evaluation import RUN, cancer_data, diabetes_data, fit_case

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPOSITORY = Path(__file__).resolve().parents[2]
KEPT = REPOSITORY / "reports" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}; install it with `bash scripts/services.sh` "
            "(as root) or `apt-get install chromium`",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


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


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


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
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(html_path.as_uri(), wait_until="load")

    assert problems == []
    assert requests == [html_path.as_uri()]  # the page fetches nothing else
    assert page.evaluate("document.scripts.length") == 0
    assert page.title() == f"Evaluation: {task}-evaluation"

    drawn = page.locator("svg.chart")
    interval_rows = page.locator("section#metrics td.ci").count()
    assert interval_rows >= 5
    assert drawn.count() >= interval_rows + len(charts) + 1  # + permutation importance
    labels: list[str] = []
    for index in range(drawn.count()):
        chart = drawn.nth(index)
        box = chart.bounding_box()
        label = chart.get_attribute("aria-label") or ""
        labels.append(label)
        assert box is not None and box["width"] > 0 and box["height"] > 0, label
    for name in [*charts, "permutation importance"]:
        assert any(label.startswith(name) for label in labels), name
    for section in ("metrics", "fit", "curves", "importance"):
        assert page.locator(f"section#{section}").is_visible()
    if task == "classification":
        assert page.locator("table.heat").is_visible()
    assert page.get_by_text("The test set was scored once").is_visible()

    shot = tmp_path / screenshot
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    width, height = _png_size(shot)
    assert width == VIEWPORT["width"] and height > VIEWPORT["height"]
    if os.environ.get("MLSHIP_KEEP_SCREENSHOTS") == "1":
        KEPT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, KEPT / screenshot)
