"""Every stored artifact is signed, through the real command line: a dataset whose signature is
missing or made with another key is refused by the commands that read it, ``mlship keys status``
counts unsigned artifacts, and ``mlship keys sign-all`` signs what was stored before signing while
leaving a forged signature in place and reporting it."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlship.security.signing import STORED, Signer
from mlship.workspace import Workspace
from tests.conftest import run_cli


def _text(result: object) -> str:
    return " ".join((result.stdout + result.stderr).split())  # type: ignore[attr-defined]


def test_unsigned_and_forged_artifacts_are_refused_and_sign_all_signs_the_rest(
    trained: Workspace, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained.settings.home_resolved, home)
    (dataset,) = trained.tracking.list_datasets()
    sha256 = dataset.profile_sha256  # what `mlship data profile` reads
    assert sha256 is not None
    signatures = home / "artifacts" / "signatures"
    objects = [p for p in (home / "artifacts" / "objects").rglob("*") if p.is_file()]
    assert len([p for p in signatures.rglob("*") if p.is_file()]) == len(objects) >= 5
    assert "profiled" in _text(run_cli("data", "profile", "churn", home=home)).lower()

    # A workspace from before signing: nothing is read until its artifacts are signed.
    shutil.rmtree(signatures)
    refused = run_cli("data", "profile", "churn", home=home, check=False)
    assert refused.returncode == 1
    assert "refusing to read artifact" in _text(refused) and "not signed" in _text(refused)
    assert "mlship keys sign-all" in _text(refused)
    status = _text(run_cli("keys", "status", home=home))
    assert f"Unsigned artifacts: {len(objects)} of {len(objects)}" in status

    # A profile signed by someone without the workspace's key stays refused, and is reported.
    forged = Signer(hmac_key=b"x" * 32).sign(sha256, STORED)
    path = signatures / sha256[:2] / sha256[2:]
    path.parent.mkdir(parents=True)
    path.write_text(forged + "\n")
    signed = run_cli("keys", "sign-all", home=home, check=False)
    assert signed.returncode == 1
    text = _text(signed)
    assert f"Artifacts signed: {len(objects) - 1}; already signed: 0" in text
    assert sha256 in text and "signature does not verify" in text
    assert path.read_text().strip() == forged
    refused = run_cli("data", "profile", "churn", home=home, check=False)
    assert refused.returncode == 1 and "signature does not verify" in _text(refused)

    # Once the forged file is dealt with, signing finishes and every command reads again.
    path.unlink()
    assert "Artifacts signed: 1; already signed:" in _text(run_cli("keys", "sign-all", home=home))
    assert f"Signed artifacts: {len(objects)} of {len(objects)}" in _text(
        run_cli("keys", "status", home=home)
    )
    assert "profiled" in _text(run_cli("data", "profile", "churn", home=home)).lower()
    inputs = trained.settings.home_resolved.parent / "churn" / "data" / "new_customers.csv"
    scored = run_cli("predict", "churn:1", str(inputs), "-o", str(tmp_path / "o.csv"), home=home)
    assert "Scored" in scored.stdout
    # The prediction log is not an artifact: the count of signed artifacts does not change.
    assert list((home / "predictions").rglob("part-*.parquet"))
    assert f"Signed artifacts: {len(objects)} of {len(objects)}" in _text(
        run_cli("keys", "status", home=home)
    )
