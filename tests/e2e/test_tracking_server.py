"""``mlship server`` on PostgreSQL: the command line works against it as it does locally, with
people's real identities on every change, and concurrent clients lose and duplicate nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from mlship.config import Settings
from mlship.crypto.encryption import MAGIC
from mlship.security.signing import sign
from mlship.store.repositories import NewCandidate, NewMetric, NewVersion
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, run_cli, small_churn
from tests.serving import RECORD, serving
from tests.tracking import Team


def _text(result: Any) -> str:
    return " ".join((result.stdout + result.stderr).split())


def test_the_command_line_works_against_the_server_as_it_does_locally(
    team: Team, trained: Workspace, tmp_path: Path
) -> None:
    spec = small_churn(tmp_path / "churn")
    homes = {user: tmp_path / f"{user}-home" for user in team.tokens}

    def cli(user: str | None, *args: str, check: bool = True) -> Any:
        home = homes[user or "admin"]
        return invoke_cli(*args, home=home, cwd=tmp_path, env=team.env(user), check=check)

    # Without the team's PII key a client refuses to ingest rather than invent a key of its own.
    keyless = {k: v for k, v in team.env("alice").items() if k != "MLSHIP_PII_KEY"}
    refused = invoke_cli("run", str(spec), home=homes["alice"], env=keyless, check=False)
    assert refused.returncode == 1 and "set the same MLSHIP_PII_KEY" in _text(refused)

    # A real process, as people run it: ingest, tune (its journal on the server), register. With
    # the key the local workspace used, the dataset is the very same one.
    local_key = trained.settings.pii_key_file_resolved.read_text().strip()
    alice = {**team.env("alice"), "MLSHIP_PII_KEY": local_key}
    run_cli("run", str(spec), home=homes["alice"], cwd=tmp_path, env=alice)

    remote = Workspace.open(Settings(home=homes["alice"], url=team.url, token=team.tokens["alice"]))
    try:
        version = remote.tracking.get_version("churn", 1)
        local = trained.tracking.get_version("churn", 1)
        assert version.created_by == "alice"
        assert version.metrics["holdout"] == pytest.approx(local.metrics["holdout"])
        assert version.dataset_hash == local.dataset_hash
        run = remote.tracking.get_run("churn")
        assert run.user == "alice" and run.status == "succeeded"
        expected = trained.tracking.get_run("churn").candidates
        assert {c.name for c in run.candidates} == {c.name for c in expected}
    finally:
        remote.close()
    shown = _text(cli("victor", "runs", "show", "churn", "--trials"))
    assert "Trials of logistic" in shown and "succeeded" in shown
    assert "churn" in _text(cli("victor", "data", "list"))
    pd.DataFrame([RECORD, {**RECORD, "age": 30}]).to_csv(tmp_path / "in.csv", index=False)
    cli("victor", "predict", "churn:1", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"))
    assert len(pd.read_csv(tmp_path / "out.csv")) == 2

    # Team features through the server: tags, notes, comparison, the model card.
    cli("alice", "runs", "tag", "churn", "team=retention")
    cli("alice", "runs", "note", "churn", "First **baseline**.")
    cli("alice", "models", "note", "churn:1", "Checked the slices.")
    tagged = _text(cli("victor", "runs", "list", "--tag", "team=retention"))
    assert "churn" in tagged and "retention" in tagged
    assert "baseline" in _text(cli("victor", "runs", "show", "churn"))
    assert "Checked the slices." in _text(cli("victor", "models", "show", "churn:1"))
    other = _second_run(team, homes["alice"], run.dataset_id)
    compared = _text(cli("victor", "runs", "compare", run.id, other))
    assert "accuracy" in compared and "0.8500" in compared  # the second run's, as recorded
    carded = cli("victor", "models", "card", "churn:1", "-o", str(tmp_path / "card"))
    assert (tmp_path / "card" / "churn-1-card.html").is_file(), carded.stdout
    refused_owner = cli("sam", "runs", "owner", "churn", "sam", check=False)
    assert "belongs to alice" in _text(refused_owner)

    # Roles: a viewer reads but does not run; a scientist requests but does not approve.
    refused = cli("victor", "run", str(spec), check=False)
    assert refused.returncode == 1
    assert "victor is a viewer; this needs the scientist role or above" in _text(refused)
    # Four eyes with real identities: a reviewer may not approve what they requested.
    cli("bob", "models", "promote", "churn:1", "--to", "production")
    own = cli("bob", "models", "approve", "churn:1", check=False)
    assert "bob requested the promotion of churn:1 and cannot also approve it" in _text(own)
    own = cli("bob", "models", "reject", "churn:1", check=False)
    assert "`mlship models withdraw churn:1` takes the request back" in _text(own)
    assert "withdrawn" in _text(cli("bob", "models", "withdraw", "churn:1"))
    requested = _text(cli("alice", "models", "promote", "churn:1", "--to", "production"))
    assert "Promotion of churn:1 to production requested" in requested
    refused = cli("alice", "models", "approve", "churn:1", check=False)
    assert "alice is a scientist; this needs the reviewer role or above" in _text(refused)
    assert "promoted" in _text(cli("bob", "models", "approve", "churn:1", "--note", "looks right"))
    history = _text(cli("victor", "models", "history", "churn"))
    assert "alice" in history and "bob" in history

    # Serving a version the server holds (the server checks its signature before sending it).
    with serving("churn@production", homes["victor"], env=team.env("victor")) as server:
        answer = httpx.post(f"{server.base}/predict", json={"records": [RECORD]}, timeout=30)
        assert answer.status_code == 200 and answer.json()["version"] == 1

    # Without a token, or with a revoked one, nothing is answered.
    assert httpx.get(f"{team.url}/api/v1/runs", timeout=10).status_code == 401
    missing = cli(None, "runs", "list", check=False)
    assert missing.returncode == 1 and "no token was given" in _text(missing)
    created = _text(cli("admin", "tokens", "create", "sam", "--name", "temporary"))
    secret = next(word for word in created.split() if word.startswith("mls_"))
    token_id = created.split("#")[1].split()[0]
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{team.url}/api/v1/whoami", headers=headers).json()["user"] == "sam"
    cli("admin", "tokens", "revoke", token_id)
    assert httpx.get(f"{team.url}/api/v1/whoami", headers=headers).status_code == 401

    # The audit log: who did what from where, readable by admins only.
    audit = _text(cli("admin", "audit", "--user", "bob", "--limit", "200"))
    assert "/approve" in audit and "model_versions" in audit
    denied = _text(cli("admin", "audit", "--denied", "--limit", "200"))
    assert "victor" in denied and "alice" in denied
    assert "needs the admin role" in _text(cli("alice", "audit", check=False))

    # A record altered behind the server's back is refused before any client unpickles it.
    engine = sa.create_engine(team.database_url, poolclass=sa.NullPool)
    forged = sign(b"x" * 32, version.artifact_sha256)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE model_versions SET artifact_signature = :s WHERE version = 1 AND "
                    "model_id = (SELECT id FROM registered_models WHERE name = 'churn')"),
            {"s": forged},
        )  # fmt: skip
    try:
        tampered = cli(
            "victor",
            "predict",
            "churn:1",
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "t.csv"),
            check=False,
        )
        assert tampered.returncode == 1
        assert "signature does not verify" in _text(tampered)
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE model_versions SET artifact_signature = :s WHERE version = 1 AND "
                        "model_id = (SELECT id FROM registered_models WHERE name = 'churn')"),
                {"s": version.artifact_signature},
            )  # fmt: skip
        engine.dispose()

    # Everything the server stored is encrypted at rest; no client holds the artifact key.
    stored = [p for p in (team.home / "artifacts" / "objects").rglob("*") if p.is_file()]
    assert len(stored) >= 5
    assert all(p.read_bytes().startswith(MAGIC) for p in stored)
    assert not any((home / "keys" / "artifacts.keyring").exists() for home in homes.values())

    # No token is ever written down by the server: not in its output, files or database.
    output = team.server.output_text()
    files = [p.read_bytes() for p in team.home.rglob("*") if p.is_file()]
    with sa.create_engine(team.database_url, poolclass=sa.NullPool).connect() as connection:
        rows = [str(r) for table in ("audit_log", "tokens", "users")
                for r in connection.execute(sa.text(f"SELECT * FROM {table}"))]  # fmt: skip
    for secret_value in [*team.tokens.values(), secret]:
        assert secret_value not in output
        assert not any(secret_value.encode() in blob for blob in files)
        assert not any(secret_value in row for row in rows)


def _second_run(team: Team, home: Path, dataset_id: int | None) -> str:
    """A quick second run of alice's through the Python API, to compare with."""
    assert dataset_id is not None
    workspace = Workspace.open(Settings(home=home, url=team.url, token=team.tokens["alice"]))
    try:
        run_id = workspace.tracking.start_run(
            pipeline="churn-baseline", task="classification", metric="accuracy",
            spec_path="b.yaml", spec_hash="b", spec={}, git_commit=None, environment={},
        )  # fmt: skip
        workspace.tracking.finish_run(
            run_id,
            dataset_id=dataset_id,
            candidates=[NewCandidate(name="constant", estimator="e", params={}, cv_mean=0.8,
                                  cv_std=0.0, fit_seconds=0.1, rank=1, selected=True)],
            metrics=[NewMetric(split="holdout", name="accuracy", value=0.85)],
            best_candidate="constant",
            wall_seconds=0.1,
        )  # fmt: skip
    finally:
        workspace.close()
    return run_id


def test_concurrent_clients_lose_and_duplicate_nothing(team: Team, tmp_path: Path) -> None:
    clients, runs_each = 6, 4
    sam = team.tokens["sam"]
    setup = Workspace.open(Settings(home=tmp_path / "setup", url=team.url, token=sam))
    try:
        data = setup.artifacts.put_bytes(b"race dataset")
        dataset, _ = setup.tracking.get_or_add_dataset(
            "f" * 64, data.sha256, 1, [{"name": "x"}], [{"kind": "test"}], pipeline="race"
        )
    finally:
        setup.close()
    failures: list[BaseException] = []
    journal_run: list[str] = []

    def client(number: int) -> None:
        settings = Settings(home=tmp_path / f"c{number}", url=team.url, token=team.tokens["sam"])
        workspace = Workspace.open(settings)
        try:
            for attempt in range(runs_each):
                artifact = workspace.artifacts.put_bytes(f"model {number}-{attempt}".encode())
                run_id = workspace.tracking.start_run(
                    pipeline="race", task="classification", metric="accuracy",
                    spec_path="race.yaml", spec_hash="h", spec={}, git_commit=None,
                    environment={"client": number},
                )  # fmt: skip
                workspace.tracking.finish_run(
                    run_id,
                    dataset_id=dataset.id,
                    candidates=[NewCandidate(name="m", estimator="e", params={}, cv_mean=0.5,
                                          cv_std=0.0, fit_seconds=0.1, rank=1, selected=True)],
                    metrics=[NewMetric(split="holdout", name="accuracy", value=0.5)],
                    best_candidate="m",
                    wall_seconds=0.1,
                    register=NewVersion(
                        name="race", dataset_hash=dataset.data_hash, estimator="e", params={},
                        artifact_sha256=artifact.sha256, artifact_size=artifact.size,
                        artifact_signature="", signature={}, metrics={},
                    ),
                )  # fmt: skip
                if journal_run:
                    workspace.tracking.append_journal(
                        journal_run[0], [{"client": number, "attempt": attempt, "i": i}
                                         for i in range(3)]
                    )  # fmt: skip
        except BaseException as exc:  # reported below, with the thread's traceback
            failures.append(exc)
        finally:
            workspace.close()

    first = Workspace.open(Settings(home=tmp_path / "j", url=team.url, token=team.tokens["sam"]))
    try:
        journal_run.append(
            first.tracking.start_run(
                pipeline="race-journal", task="classification", metric="accuracy",
                spec_path="race.yaml", spec_hash="j", spec={}, git_commit=None, environment={},
            )
        )  # fmt: skip
    finally:
        first.close()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures

    engine = sa.create_engine(team.database_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        runs = connection.execute(
            sa.text("SELECT id, status, \"user\" FROM runs WHERE pipeline = 'race'")
        ).all()
        versions = connection.execute(
            sa.text("SELECT v.version, v.run_id, v.created_by, v.artifact_signature "
                    "FROM model_versions v JOIN registered_models m ON m.id = v.model_id "
                    "WHERE m.name = 'race' ORDER BY v.version")
        ).all()  # fmt: skip
        journal = connection.execute(
            sa.text("SELECT seq FROM tuning_journal WHERE run_id = :r ORDER BY seq"),
            {"r": journal_run[0]},
        ).scalars().all()  # fmt: skip
        models = connection.execute(
            sa.text("SELECT count(*) FROM registered_models WHERE name = 'race'")
        ).scalar_one()
    engine.dispose()
    total = clients * runs_each
    assert len(runs) == total and {r.status for r in runs} == {"succeeded"}
    assert {r.user for r in runs} == {"sam"}
    assert [v.version for v in versions] == list(range(1, total + 1))
    assert sorted(v.run_id for v in versions) == sorted(r.id for r in runs)
    assert {v.created_by for v in versions} == {"sam"}
    assert all(v.artifact_signature.startswith("hmac-sha256:") for v in versions)
    assert models == 1
    assert journal == list(range(total * 3))
