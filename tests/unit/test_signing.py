"""Signed model artifacts: a model is unpickled only when the workspace's key vouches for its
checksum, and its bytes match that checksum. A flipped byte, a swapped artifact with a matching
checksum, a forged or missing signature and another workspace's key are all refused."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier
from sqlalchemy import update

from mlship.config import Settings
from mlship.errors import ConfigError, IntegrityError
from mlship.security.signing import Signer, sign, signing_key, verify
from mlship.store.artifacts import LocalArtifactStore
from mlship.store.entities import ModelVersion
from mlship.store.repositories import NewVersion
from mlship.store.tables import ModelVersion as VersionRow
from mlship.train.model_io import save_model
from mlship.workspace import Workspace
from tests.conftest import invoke_cli

SIGNATURE = {
    "task": "classification",
    "inputs": [{"name": "x", "type": "float"}],
    "target": {"name": "y", "type": "category", "role": "target"},
    "classes": ["a", "b"],
}


def _register(workspace: Workspace, signed: bool = True) -> ModelVersion:
    model = DummyClassifier(strategy="most_frequent").fit([[0.0], [1.0]], ["a", "b"])
    artifact = save_model(model, workspace.artifacts)
    store = workspace.metadata
    table = workspace.artifacts.put_bytes(b"a dataset").sha256
    dataset, _ = store.get_or_add_dataset("h" * 64, table, 2, [{"name": "x"}], [])
    run_id = store.start_run(
        pipeline="m", task="classification", metric="accuracy", spec_path="/m.yaml",
        spec_hash="0" * 64, spec={}, git_commit=None, environment={},
    )  # fmt: skip
    version = store.finish_run(
        run_id,
        dataset_id=dataset.id,
        candidates=[],
        metrics=[],
        best_candidate="c",
        wall_seconds=1.0,
        register=NewVersion(
            name="m",
            dataset_hash="h" * 64,
            estimator="sklearn.dummy.DummyClassifier",
            params={},
            artifact_sha256=artifact.sha256,
            artifact_size=artifact.size,
            artifact_signature=workspace.artifact_signature(artifact.sha256),
            signature=SIGNATURE,
            metrics={},
        ),
    )
    assert version is not None
    if not signed:
        _set(workspace, artifact_signature=None)
    return workspace.tracking.get_version("m", 1)


def _set(workspace: Workspace, **values: object) -> None:
    with workspace.metadata.transaction() as session:
        session.execute(update(VersionRow).values(**values))


def test_a_signed_model_loads(workspace: Workspace) -> None:
    loaded = workspace.load_model(_register(workspace))
    assert loaded.pipeline.predict([[3.0]]).tolist() == ["a"]


def test_one_flipped_byte_of_the_artifact_is_refused(workspace: Workspace) -> None:
    version = _register(workspace)
    store = workspace.artifacts
    assert isinstance(store, LocalArtifactStore)
    path = store.path_for(version.artifact_sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(stat.S_IWUSR | stat.S_IRUSR)
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="refusing to load model m:1"):
        workspace.load_model(version)


def test_a_swapped_artifact_with_its_own_checksum_is_refused(workspace: Workspace) -> None:
    """Someone who can write both stores replaces the model and its checksum: the signature,
    made with a key they do not have, no longer matches."""
    _register(workspace)
    evil = workspace.artifacts.put_bytes(pickle.dumps({"not": "the model"}))
    _set(workspace, artifact_sha256=evil.sha256)
    with pytest.raises(IntegrityError, match="m:1: its signature does not verify"):
        workspace.load_model(workspace.tracking.get_version("m", 1))


def test_a_forged_signature_and_another_key_are_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    version = _register(workspace)
    _set(workspace, artifact_signature="hmac-sha256:" + "0" * 64)
    with pytest.raises(IntegrityError, match="does not verify"):
        workspace.load_model(workspace.tracking.get_version("m", 1))
    other = Workspace.open(
        Settings(home=workspace.settings.home, signing_key_file=tmp_path / "other.key")
    )
    _set(workspace, artifact_signature=version.artifact_signature)
    with pytest.raises(IntegrityError, match="does not verify"):
        other.load_model(workspace.tracking.get_version("m", 1))
    other.close()


def test_an_unsigned_version_is_refused_until_it_is_signed(workspace: Workspace) -> None:
    version = _register(workspace, signed=False)
    with pytest.raises(IntegrityError, match=r"m:1: it is not signed .`mlship models sign`"):
        workspace.load_model(version)
    home = workspace.settings.home
    signed = invoke_cli("models", "sign", "--all-unsigned", home=home)
    assert "m:1: signed" in signed.stdout
    assert workspace.load_model(workspace.tracking.get_version("m", 1)).version == 1
    again = invoke_cli("models", "sign", "m:1", home=home)
    assert "m:1: already signed" in again.stdout
    history = invoke_cli("models", "history", "m", home=home)
    assert "signed" in history.stdout


def test_the_key_file_is_created_once_private_and_never_by_a_verifier(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    with pytest.raises(ConfigError, match=r"no signing key: .* set MLSHIP_SIGNING_KEY"):
        signing_key(settings, create=False)
    key = signing_key(settings)
    path = settings.signing_key_file_resolved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(settings) == key == signing_key(settings, create=False)
    given = Settings(home=tmp_path / "ws", signing_key="k" * 40)
    assert signing_key(given) == b"k" * 40
    with pytest.raises(ConfigError, match=r"MLSHIP_SIGNING_KEY\) must be at least 32"):
        signing_key(Settings(home=tmp_path, signing_key="short"))
    verify(key, "a" * 64, sign(key, "a" * 64), "x")


def _ed25519(tmp_path: Path, **extra: object) -> Settings:
    return Settings(home=tmp_path / "ws", signing_scheme="ed25519", **extra)  # type: ignore[arg-type]


def test_an_ed25519_workspace_signs_and_a_public_key_alone_verifies(tmp_path: Path) -> None:
    from mlship.security.signing import signer

    workspace = Workspace.open(_ed25519(tmp_path))
    try:
        version = _register(workspace)
        assert version.artifact_signature is not None
        assert version.artifact_signature.startswith("ed25519:")
        assert workspace.load_model(version).pipeline.predict([[1.0]]).tolist() == ["a"]
        key_file = workspace.settings.signing_private_key_file_resolved
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        public = workspace.signer.public_text()
        assert public is not None
        env = {"MLSHIP_SIGNING_SCHEME": "ed25519"}
        printed = invoke_cli("keys", "public", home=workspace.settings.home, env=env)
        assert printed.stdout.strip() == public

        # A verifier with the public key only: it checks, and it cannot sign.
        verifier = signer(Settings(home=tmp_path / "elsewhere", verify_key=public), create=False)
        verifier.verify(version.artifact_sha256, version.artifact_signature, "m:1")
        with pytest.raises(ConfigError, match="cannot sign"):
            Signer(public=verifier.public).sign(version.artifact_sha256)
        tail = "00" if not version.artifact_signature.endswith("00") else "11"
        forged = version.artifact_signature[:-2] + tail
        with pytest.raises(IntegrityError, match="does not verify"):
            verifier.verify(version.artifact_sha256, forged, "m:1")
        with pytest.raises(IntegrityError, match="does not verify"):
            verifier.verify("0" * 64, version.artifact_signature, "m:1")
        # Another pair's public key does not vouch for it; no public key at all says so.
        other = Workspace.open(_ed25519(tmp_path / "other"))
        with pytest.raises(IntegrityError, match="does not verify"):
            other.signer.verify(version.artifact_sha256, version.artifact_signature, "m:1")
        other.close()
        with pytest.raises(IntegrityError, match="set MLSHIP_VERIFY_KEY"):
            Signer(hmac_key=b"k" * 32).verify(
                version.artifact_sha256, version.artifact_signature, "m:1"
            )
    finally:
        workspace.close()


def test_versions_signed_before_switching_to_ed25519_still_load(tmp_path: Path) -> None:
    before = Workspace.open(Settings(home=tmp_path / "ws"))
    try:
        old = _register(before)
        assert old.artifact_signature is not None
        assert old.artifact_signature.startswith("hmac-sha256:")
    finally:
        before.close()
    after = Workspace.open(_ed25519(tmp_path))
    try:
        assert after.load_model(after.tracking.get_version("m", 1)).version == 1
        assert after.signer.sign(old.artifact_sha256).startswith("ed25519:")
    finally:
        after.close()


def test_bad_ed25519_keys_are_named(tmp_path: Path) -> None:
    from mlship.security.signing import signer

    with pytest.raises(ConfigError, match="MLSHIP_VERIFY_KEY: expected the base64"):
        signer(Settings(home=tmp_path, verify_key="not a key"), create=False)
    with pytest.raises(ConfigError, match="no Ed25519 signing key"):
        signer(_ed25519(tmp_path), create=False)
    with pytest.raises(ConfigError, match="MLSHIP_SIGNING_PRIVATE_KEY: expected"):
        signer(_ed25519(tmp_path, signing_private_key="short"))
