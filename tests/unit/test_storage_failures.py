"""Storage failures named for the user: each kind of refusal gets its own words and remedy, other
errors pass through untouched, and the write probe finds a store that cannot be written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.errors import StorageError
from mlship.store.artifacts import LocalArtifactStore
from mlship.store.failures import Place, anywhere, is_storage_failure, probe

STORE = Place("the artifact store", Path("/data/store"), "MLSHIP_ARTIFACT_ROOT")


@pytest.mark.parametrize(
    ("code", "problem", "remedy"),
    [
        (errno.EROFS, "is read-only", "remount it read-write, or set MLSHIP_ARTIFACT_ROOT to"),
        (errno.ENOSPC, "is full (no space left on the device)", "free some space there"),
        (errno.EDQUOT, "is over its disk quota", "a directory on a larger disk"),
        (errno.EACCES, "refuses this user (permission denied)", "fix its permissions"),
        (errno.EPERM, "refuses this user (operation not permitted)", "fix its permissions"),
        (errno.EIO, "failed with an I/O error", "check the disk or the mount"),
        (errno.ENOTDIR, "is not a directory (a file is in its way)", "move the file away"),
    ],
)
def test_each_refusal_is_named_with_the_store_the_path_and_a_remedy(
    code: int, problem: str, remedy: str
) -> None:
    failed = OSError(code, os.strerror(code), "/data/store/incoming/artifact.x.tmp")
    with pytest.raises(StorageError) as raised, STORE.guard():
        raise failed
    message = str(raised.value)
    assert message.startswith(f"the artifact store at /data/store {problem}")
    assert "(writing /data/store/incoming/artifact.x.tmp failed)" in message
    assert remedy in message
    assert raised.value.__cause__ is failed


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError(errno.ENOENT, "gone", "/x"), ValueError("not a sha256"), KeyError("k")],
)
def test_other_errors_pass_through_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, STORE.guard():
        raise error
    assert raised.value is error


def test_a_failure_no_store_claims_names_its_directory() -> None:
    failed = OSError(errno.EROFS, "Read-only file system", "/mnt/out/report.html")
    assert str(anywhere(failed)) == (
        "the directory at /mnt/out is read-only (using /mnt/out/report.html failed): remount it "
        "read-write, or use a writable directory"
    )
    assert "is full" in str(anywhere(OSError(errno.ENOSPC, "No space left on device")))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(code=st.integers(min_value=0, max_value=200), name=st.text(max_size=40))
def test_any_errno_and_file_name_is_described_or_left_alone(code: int, name: str) -> None:
    """Whatever the errno and however odd the file name, the guard either names the store or
    re-raises the original error; it never fails itself."""
    failed = OSError(code, "some failure", name or None)
    expected = StorageError if is_storage_failure(failed) else OSError
    with pytest.raises(expected) as raised, STORE.guard():
        raise failed
    if expected is StorageError:
        assert str(raised.value).startswith("the artifact store at /data/store ")
        assert raised.value.__cause__ is failed
    else:
        assert raised.value is failed


def test_the_probe_leaves_nothing_behind_in_a_writable_store(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store", signer=None)
    store.probe()
    assert list((tmp_path / "store" / "incoming").iterdir()) == []
    probe(Place("the reports folder", tmp_path / "reports", "MLSHIP_HOME"))
    assert list((tmp_path / "reports").iterdir()) == []


def test_the_probe_names_a_file_where_the_store_should_be(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a directory")
    store = LocalArtifactStore(tmp_path / "store", signer=None)
    with pytest.raises(StorageError) as raised:
        store.probe()
    assert str(raised.value).startswith(
        f"the artifact store at {tmp_path / 'store'} is not a directory (a file is in its way)"
    )
    with pytest.raises(StorageError, match="is not a directory"):
        store.put_bytes(b"data")
