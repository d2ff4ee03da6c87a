"""Whatever else a workspace holds (artifacts written and never recorded, dataset versions no run
uses, any retention), ``mlship gc --apply`` leaves every model predicting, every artifact the
metadata names stored and signed, and deletes exactly the unnamed ones."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.store.artifacts import LocalArtifactStore
from mlship.store.references import referenced
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.quick_project import fast_churn


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace with two runs and two registered versions; its home and the new rows."""
    root = tmp_path_factory.mktemp("gc-properties")
    spec, home = fast_churn(root / "churn"), root / "home"
    invoke_cli("run", str(spec), home=home)
    spec.write_text(spec.read_text().replace("seed: 42", "seed: 7"))
    assert "Registered churn:2" in invoke_cli("run", str(spec), home=home).stdout
    return home, spec.parent / "data" / "new_customers.csv"


def _stored(home: Path) -> set[str]:
    return set(LocalArtifactStore(home / "artifacts", signer=None).addresses())


def _fill(home: Path, orphans: list[bytes], versions: int) -> set[str]:
    """Store ``orphans`` unrecorded and ``versions`` unused dataset versions of the pipeline; the
    addresses of the orphans."""
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        stray = {workspace.artifacts.put_bytes(b"orphan:" + blob).sha256 for blob in orphans}
        for i in range(versions):
            data = workspace.artifacts.put_bytes(f"dataset version {i}".encode() * 50).sha256
            workspace.metadata.get_or_add_dataset(
                f"{i:064x}", data, 50, [{"name": "x", "dtype": "int64"}], [], pipeline="churn"
            )
        return stray
    finally:
        workspace.close()


def _named(home: Path) -> frozenset[str]:
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        with workspace.metadata.transaction() as session:
            return referenced(session)
    finally:
        workspace.close()


@settings(derandomize=True, max_examples=5, deadline=None)
@given(
    orphans=st.lists(st.binary(max_size=64), max_size=4, unique=True),
    versions=st.integers(0, 3),
    keep=st.one_of(st.none(), st.integers(0, 3)),
)
def test_gc_apply_keeps_every_model_predicting(
    trained: tuple[Path, Path], orphans: list[bytes], versions: int, keep: int | None
) -> None:
    base, rows = trained
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(base, home)
        stray = _fill(home, orphans, versions)
        before = _stored(home)
        named_before = _named(home) & before
        retention = [] if keep is None else ["--keep-versions", str(keep)]
        invoke_cli("gc", "--older-than", "0", *retention, "--apply", home=home)

        after, named = _stored(home), _named(home)
        assert named & before <= after  # nothing still named was deleted
        assert not (after - named)  # and nothing unnamed is left
        assert not (stray & after)
        if keep is None:
            assert after == named_before
        status = invoke_cli("keys", "status", home=home).stdout
        assert f"Signed artifacts: {len(after)} of {len(after)}" in status, status
        assert "Missing artifacts: 0 of" in status, status
        for version in ("churn:1", "churn:2"):
            out = Path(scratch) / f"{version}.csv"
            scored = invoke_cli("predict", version, str(rows), "-o", str(out), home=home)
            assert f"Scored 200 rows with {version}" in scored.stdout, scored.stdout
