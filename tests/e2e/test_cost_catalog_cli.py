"""``mlship cost catalog`` and ``mlship cost what-if`` through the command line, on a workspace
with a real training run: the prices printed are the run's recorded usage priced by hand."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mlship.prices import GB
from mlship.workspace import Workspace
from tests.conftest import invoke_cli


@pytest.fixture
def home(trained: Workspace, tmp_path: Path) -> Path:
    """A copy of the trained workspace, so the session's one stays untouched."""
    copy = tmp_path / "ws"
    shutil.copytree(trained.settings.home, copy)
    return copy


def _row(stdout: str, name: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)]
        if name in cells:
            return [c for c in cells if c]
    raise AssertionError(f"no row {name!r} in:\n{stdout}")


def test_catalog_lists_every_provider_and_filters_one(tmp_path: Path) -> None:
    everything = invoke_cli("cost", "catalog", home=tmp_path / "ws").stdout
    for name in (
        "m5.large",
        "n2-standard-4",
        "Standard_D4s_v5",
        "s3-glacier-instant",
        "azure-cool",
    ):
        assert name in everything
    assert "as of 2024-06-01" in everything
    assert _row(everything, "m5.large")[:8] == [
        "aws",
        "m5.large",
        "general",
        "2",
        "8",
        "0.0960",
        "0.0380",
        "0.0600",
    ]
    gcp = invoke_cli("cost", "catalog", "--provider", "gcp", home=tmp_path / "ws").stdout
    assert "n2-standard-8" in gcp and "gcs-nearline" in gcp
    assert "m5.large" not in gcp and "azure-hot" not in gcp
    wrong = invoke_cli("cost", "catalog", "--provider", "ibm", home=tmp_path / "ws", check=False)
    assert wrong.returncode == 1
    assert "no provider 'ibm' in the price catalog; it has: aws, azure, gcp" in wrong.stderr


def test_what_if_prices_the_recorded_run(home: Path, trained: Workspace) -> None:
    (run,) = trained.runs.list_runs()
    assert run.cpu_seconds is not None and run.wall_seconds is not None
    memory_gib = (run.peak_memory_bytes or 0) / GB
    hours = max(run.cpu_seconds / 3600 / 2, memory_gib * run.wall_seconds / 3600 / 8)

    shown = invoke_cli(
        "cost",
        "what-if",
        "--since",
        "30d",
        "--instance",
        "m5.large",
        "--instance",
        "c5.xlarge",
        home=home,
    ).stdout
    assert "1 runs of the last 30d" in shown
    row = _row(shown, "m5.large")
    assert row[:6] == [
        "aws",
        "m5.large",
        f"{hours:.4f}",
        f"{hours * 0.096:.4f}",
        f"{hours * 0.038:.4f}",
        f"{hours * 0.060:.4f}",
    ]
    assert row[6] == f"{1 - 0.038 / 0.096:.0%}"
    assert row[7] == "yes"
    assert "c5.xlarge" in shown and "n2-standard-4" not in shown


def test_what_if_uses_the_settings_overrides(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlship.toml").write_text(
        '[catalog.instances."m5.large"]\nspot_hour = 0.5\n\n'
        '[catalog.instances."tiny.box"]\nprovider = "onprem"\nfamily = "general"\nvcpus = 1\n'
        "memory_gib = 0.001\non_demand_hour = 1.0\nspot_hour = 1.0\nreserved_hour = 1.0\n"
    )
    shown = invoke_cli(
        "cost",
        "what-if",
        "--instance",
        "m5.large",
        "--instance",
        "tiny.box",
        home=home,
        cwd=project,
    ).stdout
    assert _row(shown, "m5.large")[4] != "0.0000"
    assert _row(shown, "m5.large")[6] == f"{1 - 0.5 / 0.096:.0%}"  # spot now dearer
    assert _row(shown, "tiny.box")[-1] == "1 runs too big"


def test_bad_settings_and_options_are_named(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlship.toml").write_text('[catalog.instances."m5.large"]\nvcpus = -2\n')
    bad = invoke_cli("cost", "what-if", home=home, cwd=project, check=False)
    assert bad.returncode == 1
    assert "catalog.instances.m5.large.vcpus" in bad.stderr
    assert "Traceback" not in bad.stderr

    (project / "mlship.toml").write_text('[catalog.instances."new.box"]\nvcpus = 4\n')
    missing = invoke_cli("cost", "catalog", home=home, cwd=project, check=False)
    assert missing.returncode == 1
    assert "catalog.instances.new.box in the settings is not in the shipped catalog" in (
        missing.stderr
    )
    assert "missing: provider, family, memory_gib" in missing.stderr

    unknown = invoke_cli("cost", "what-if", "--instance", "x9.huge", home=home, check=False)
    assert unknown.returncode == 1
    assert "no instance type 'x9.huge' in the price catalog" in unknown.stderr
    since = invoke_cli("cost", "what-if", "--since", "a month", home=home, check=False)
    assert since.returncode == 1
    assert "--since 'a month'" in since.stderr


def test_what_if_with_no_runs_says_so(tmp_path: Path) -> None:
    shown = invoke_cli("cost", "what-if", "--since", "1h", home=tmp_path / "ws").stdout
    assert "No measured training run started in the last 1h: nothing to price." in shown
