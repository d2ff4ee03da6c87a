"""Prediction logs and stored labels at rest: encrypted like artifacts when encryption is on,
read back by every reader with the workspace's key, refused with the file and key named without
it, readable beside parts written before encryption, and moved by key rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from mlship.config import Settings
from mlship.crypto.encryption import MAGIC
from mlship.errors import IntegrityError
from mlship.monitor.feedback import FeedbackStore, Label, feedback_directory, read_labels
from mlship.monitor.predlog import Entry, PredictionLog, read_log
from mlship.monitor.traffic import log_parts, scan_log
from mlship.security.keyring import load_keyring
from mlship.security.keyring import sealing as sealing_of
from mlship.security.rotation import census, encrypt_all, rotate
from mlship.store.logstore import LogTarget
from mlship.store.parts import PLAIN, LogParts, Sealing, part_key_id, stored_parts, unsealed

SECRET = "4111-1111-1111-1111"
"""A value a caller sent that must not be readable on disk."""


def _entry(request_id: str) -> Entry:
    return Entry(
        request_id=request_id,
        model="churn",
        version=1,
        role="route",
        latency_ms=1.5,
        inputs=[{"card": SECRET, "age": 40}],
        outputs=[{"prediction": "yes"}],
    )


def _log(directory: Path | LogTarget, sealing: Sealing, *request_ids: str) -> None:
    log = PredictionLog(directory, "churn", sealing=sealing)
    for request_id in request_ids:
        log.append(_entry(request_id))
    log.close()


@pytest.fixture
def on(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws", encrypt_artifacts=True)


def test_parts_are_encrypted_and_every_reader_reads_them(on: Settings) -> None:
    sealing = sealing_of(on)
    directory = on.home_resolved / "predictions" / "churn"
    _log(directory, sealing, "r1", "r2")
    FeedbackStore(feedback_directory(on.home_resolved), sealing).append(
        [Label("r1", 0, "yes")], "test"
    )
    parts = stored_parts(on.home_resolved)
    assert len(parts) == 2
    for part in parts:
        data = part.read_bytes()
        assert data.startswith(MAGIC) and SECRET.encode() not in data and b"PAR1" not in data

    assert read_log(directory, sealing).column("request_id").to_pylist() == ["r1", "r2"]
    scanned = scan_log(log_parts(on.home_resolved), sealing).collect()
    assert scanned.get_column("request_id").to_list() == ["r1", "r2"]
    assert SECRET in scanned.get_column("input")[0]
    labels = read_labels(feedback_directory(on.home_resolved), sealing)
    assert labels.get_column("request_id").to_list() == ["r1"]


def test_without_the_key_a_reader_names_the_file_and_the_key(on: Settings) -> None:
    sealing = sealing_of(on)
    directory = on.home_resolved / "predictions" / "churn"
    _log(directory, sealing, "r1")
    (part,) = log_parts(on.home_resolved)
    assert sealing.cipher is not None
    key = sealing.cipher.current_id
    with pytest.raises(IntegrityError, match=rf"{part} is encrypted \(under key {key}\)"):
        read_log(directory)
    with pytest.raises(IntegrityError, match="MLSHIP_ENCRYPTION_KEY"):
        scan_log([part], PLAIN)


def test_parts_from_before_encryption_still_read_and_encrypt_all_seals_them(
    on: Settings,
) -> None:
    directory = on.home_resolved / "predictions" / "churn"
    _log(directory, PLAIN, "old")
    sealing = sealing_of(on)
    _log(directory, sealing, "new")
    scanned = scan_log(log_parts(on.home_resolved), sealing).collect()
    assert sorted(scanned.get_column("request_id").to_list()) == ["new", "old"]
    assert census(on).files[None] == 1

    done = encrypt_all(on)
    assert (done.moved, done.skipped, done.failed) == (1, 1, [])
    assert {part_key_id(p) for p in log_parts(on.home_resolved)} == {sealing.cipher.current_id}  # type: ignore[union-attr]
    assert read_log(directory, sealing).num_rows == 2


def test_rotation_moves_the_parts_and_retires_the_old_key(on: Settings) -> None:
    sealing = sealing_of(on)
    _log(on.home_resolved / "predictions" / "churn", sealing, "r1")
    FeedbackStore(feedback_directory(on.home_resolved), sealing).append(
        [Label("r1", 0, "yes")], "test"
    )
    old = load_keyring(on)
    assert old is not None
    done = rotate(on)
    assert (done.moved, done.failed) == (2, [])
    assert done.retired == (old.current_id,)
    assert {part_key_id(p) for p in stored_parts(on.home_resolved)} == {done.key}
    fresh = sealing_of(on)
    frame = scan_log(log_parts(on.home_resolved), fresh).collect()
    assert frame.get_column("request_id").to_list() == ["r1"]
    labels = read_labels(feedback_directory(on.home_resolved), fresh)
    assert isinstance(labels, pl.DataFrame) and labels.height == 1


def test_rotation_moves_the_parts_kept_in_a_bucket(object_store: Any, tmp_path: Path) -> None:
    """With the artifacts in object storage the logs are there too, and a rotation that retires
    the old key must have moved them: a part left under a retired key could never be read."""
    import secrets

    from mlship.store.log_home import log_store_for

    on = Settings(
        home=tmp_path / "ws",
        encrypt_artifacts=True,
        artifact_root=f"s3://{object_store.bucket}/rotate-{secrets.token_hex(4)}",
        s3_endpoint_url=object_store.endpoint,
        s3_access_key_id=object_store.access_key,
        s3_secret_access_key=object_store.secret_key,
    )
    store = log_store_for(on)
    sealing = sealing_of(on)
    _log(LogTarget(store, "predictions/churn"), sealing, "r1", "r2")
    old = load_keyring(on)
    assert old is not None
    [part] = store.parts("predictions/churn")
    assert store.read(part).startswith(MAGIC)

    done = rotate(on)
    assert (done.moved, done.failed) == (1, [])
    assert done.retired == (old.current_id,)
    walked = LogParts(store, sealing_of(on).cipher)
    assert {walked.key_id(name) for name in walked.addresses()} == {done.key}
    assert not (on.home_resolved / "predictions").exists()
    rows = pq.read_table(unsealed(store.read(part), part.name, sealing_of(on)))
    assert sorted(rows.column("request_id").to_pylist()) == ["r1", "r2"]


def test_the_usage_ledger_is_sealed_and_moved_by_rotation(on: Settings) -> None:
    from datetime import UTC, datetime

    from mlship.costs.ledger import UsageRecord, read_usage, write_usage
    from mlship.store.log_home import log_store_for

    store = log_store_for(on)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = UsageRecord(kind="serving", started_at=at, ended_at=at, model="churn", version=1)
    write_usage(store, [record], sealing_of(on))
    [part] = stored_parts(on.home_resolved)
    assert part.parent.name == "usage" and part.read_bytes().startswith(MAGIC)
    with pytest.raises(IntegrityError):
        read_usage(store, PLAIN)
    assert [address.split("/")[0] for address in LogParts(store, None).addresses()] == ["usage"]

    done = rotate(on)
    assert (done.moved, done.failed) == (1, [])
    assert part_key_id(part) == done.key
    assert read_usage(store, sealing_of(on)) == [record]
