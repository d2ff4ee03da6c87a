"""Whatever else a workspace holds (artifacts written and never recorded, dataset versions no run
uses, any retention, any tiering rules), ``mlship gc --apply`` leaves every model predicting,
every artifact the metadata names stored (in either tier) and signed, deletes exactly the
unnamed ones, moves only named ones to the cold tier, and a second collection has nothing left
to do."""

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


def _rules(tiers: dict[str, int], delete_keep: int | None) -> str:
    """``[[gc.rules]]`` tiering each kind in ``tiers`` beyond its newest N, and deleting dataset
    versions beyond the newest ``delete_keep``."""
    text = ""
    for what, keep in tiers.items():
        text += (
            f'[[gc.rules]]\nwhat = "{what}"\naction = "tier"\nolder_than = "0"\n'
            f"keep_versions = {keep}\n"
        )
    if delete_keep is not None:
        text += (
            '[[gc.rules]]\nwhat = "datasets"\naction = "delete"\nolder_than = "0"\n'
            f"keep_versions = {delete_keep}\n"
        )
    return text


@settings(derandomize=True, max_examples=6, deadline=None)
@given(
    orphans=st.lists(st.binary(max_size=64), max_size=4, unique=True),
    versions=st.integers(0, 3),
    keep=st.one_of(st.none(), st.integers(0, 3)),
    tiers=st.dictionaries(st.sampled_from(["datasets", "models", "reports"]), st.integers(0, 2)),
    delete_keep=st.one_of(st.none(), st.integers(0, 2)),
)
def test_gc_apply_keeps_every_model_predicting(
    trained: tuple[Path, Path],
    orphans: list[bytes],
    versions: int,
    keep: int | None,
    tiers: dict[str, int],
    delete_keep: int | None,
) -> None:
    base, rows = trained
    with tempfile.TemporaryDirectory() as scratch:
        home, project = Path(scratch) / "home", Path(scratch) / "project"
        shutil.copytree(base, home)
        project.mkdir()
        (project / "mlship.toml").write_text(_rules(tiers, delete_keep))
        stray = _fill(home, orphans, versions)
        before = _stored(home)
        named_before = _named(home) & before
        retention = [] if keep is None else ["--keep-versions", str(keep)]
        invoke_cli("gc", "--older-than", "0", *retention, "--apply", home=home, cwd=project)

        after, named = _stored(home), _named(home)
        cold = set(LocalArtifactStore(home / "artifacts" / "cold", signer=None).addresses())
        assert cold <= named and bool(cold) <= bool(tiers)  # only named ones move
        assert named & before <= after  # nothing still named was deleted
        assert not (after - named)  # and nothing unnamed is left
        assert not (stray & after)
        if keep is None and delete_keep is None:
            assert after == named_before
        again = invoke_cli("gc", "--older-than", "0", *retention, home=home, cwd=project)
        flat = " ".join(again.stdout.split())
        assert "To delete: 0 artifact(s)" in flat and "To tier: 0 artifact(s)" in flat, flat
        status = invoke_cli("keys", "status", home=home).stdout
        assert f"Signed artifacts: {len(after)} of {len(after)}" in status, status
        assert "Missing artifacts: 0 of" in status, status
        for version in ("churn:1", "churn:2"):
            out = Path(scratch) / f"{version}.csv"
            scored = invoke_cli("predict", version, str(rows), "-o", str(out), home=home)
            assert f"Scored 200 rows with {version}" in scored.stdout, scored.stdout
