"""``[[gc.rules]]`` through the real command line, on a local disk and in a real bucket: a dry
run lists what moves to the cold tier and what that saves without touching anything; ``--apply``
moves it, and afterwards every model still predicts, every run still shows and renders its
report, every artifact is still signed and found, and a second collection moves nothing."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from mlship.config import Settings
from mlship.store.artifacts import LocalArtifactStore
from mlship.store.references import referenced
from mlship.store.s3 import make_client
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn

RULES = """
[gc]
cold_class = "s3-glacier-instant"

[[gc.rules]]
what = "datasets"
action = "tier"
older_than = "0"

[[gc.rules]]
what = "models"
action = "tier"
older_than = "0"
keep_versions = 1

[[gc.rules]]
what = "reports"
action = "tier"
older_than = "0"
keep_versions = 1
"""


def _two_versions(root: Path, home: Path, env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Train churn:1 and churn:2 (another seed) on the same data; the project folder (with the
    rules in its mlship.toml) and the rows to score."""
    spec = fast_churn(root / "churn")
    assert "Registered churn:1" in run_cli("run", str(spec), home=home, env=env).stdout
    spec.write_text(spec.read_text().replace("seed: 42", "seed: 7"))
    assert "Registered churn:2" in run_cli("run", str(spec), home=home, env=env).stdout
    project = root / "project"
    project.mkdir()
    (project / "mlship.toml").write_text(RULES)
    return project, spec.parent / "data" / "new_customers.csv"


def _facts(home: Path, env: dict[str, str] | None = None) -> tuple[str, str, str, frozenset[str]]:
    """churn:1's model and run, churn:2's model, and every referenced address."""
    root = env["MLSHIP_ARTIFACT_ROOT"] if env else None
    settings = Settings(home=home, user="tester", artifact_root=root)
    workspace = Workspace.open(settings)
    try:
        first, second = (workspace.tracking.get_version("churn", v) for v in (1, 2))
        with workspace.metadata.transaction() as session:
            names = referenced(session)
        return first.artifact_sha256, first.run_id, second.artifact_sha256, names
    finally:
        workspace.close()


def _everything_still_works(home: Path, rows: Path, run_id: str, env: dict[str, str] | None) -> str:
    """Both versions predict, the old run shows and renders its report, nothing is missing;
    the words of ``mlship keys status``."""
    for version in ("churn:1", "churn:2"):
        out = rows.parent / f"{version.replace(':', '-')}-scored.csv"
        scored = run_cli("predict", version, str(rows), "-o", str(out), home=home, env=env)
        assert f"Scored 200 rows with {version}" in scored.stdout, scored.stdout
    shown = run_cli("runs", "show", run_id, home=home, env=env)
    assert run_id in shown.stdout
    report = run_cli("runs", "report", run_id, home=home, env=env, check=False)
    assert report.returncode == 0, report.stderr
    status = " ".join(run_cli("keys", "status", home=home, env=env).stdout.split())
    assert "Missing artifacts: 0 of" in status, status
    return status


def test_tiering_on_local_disk_keeps_every_model_and_run_readable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    project, rows = _two_versions(tmp_path, home)
    old_model, old_run, new_model, names = _facts(home)
    store = LocalArtifactStore(home / "artifacts", signer=None)
    before = set(store.addresses())

    dry = invoke_cli("gc", home=home, cwd=project).stdout
    flat = " ".join(dry.split())
    assert "Artifacts to tier" in dry and old_model[:16] in dry and new_model[:16] not in dry
    assert "To tier: " in flat and "to cold (s3-glacier-instant, 0.004 USD per GB-month)" in flat
    assert "Dry run: nothing was deleted or moved" in flat
    assert "0 B cold now" in flat, flat
    assert not (home / "artifacts" / "cold").exists()
    assert set(store.addresses()) == before

    applied = invoke_cli("gc", "--apply", home=home, cwd=project).stdout
    assert "Tiered " in applied and "artifact(s) to cold." in applied, applied
    cold = set(LocalArtifactStore(home / "artifacts" / "cold", signer=None).addresses())
    assert old_model in cold and new_model not in cold
    assert not (
        cold & {p.parent.name + p.name for p in (home / "artifacts" / "objects").glob("*/*")}
    )
    assert set(store.addresses()) == before  # moved, not lost
    assert names & before <= set(store.addresses())

    status = _everything_still_works(home, rows, old_run, None)
    assert f"Signed artifacts: {len(before)} of {len(before)}" in status, status

    again = " ".join(invoke_cli("gc", home=home, cwd=project).stdout.split())
    assert "To tier: 0 artifact(s)" in again, again
    assert "0 B cold now" not in again

    # The cost report bills what was tiered at the cold class's price.
    costs = json.loads(invoke_cli("cost", "report", "--json", home=home, cwd=project).stdout)
    classes = {row["storage_class"]: row for row in costs["storage"]}
    assert set(classes) == {"standard", "s3-glacier-instant"}, classes
    assert classes["s3-glacier-instant"]["stored_gb"] > 0


def test_a_move_cut_short_is_finished_by_the_next_one(tmp_path: Path) -> None:
    """A crash after the copy and before the original is deleted leaves both: reads work, the
    store lists the artifact once, and the next move finishes the job."""
    store = LocalArtifactStore(tmp_path / "artifacts", signer=None)
    ref = store.put_bytes(b"a dataset, long ago" * 500)
    hot, cold = store.path_for(ref.sha256), store.cold_path_for(ref.sha256)
    cold.parent.mkdir(parents=True)
    cold.write_bytes(hot.read_bytes()[:100])  # half a copy: as if written in place and cut
    (cold.parent / f".{cold.name}.x.tmp").write_bytes(b"left by a crash")
    assert list(store.addresses()) == [ref.sha256]
    assert store.get_bytes(ref.sha256) == b"a dataset, long ago" * 500  # from the original

    assert store.tier(ref.sha256)
    assert not hot.exists() and store.stored(ref.sha256).cold
    assert store.get_bytes(ref.sha256) == b"a dataset, long ago" * 500  # from the cold copy
    assert not store.tier(ref.sha256)  # nothing left to move
    assert list(store.addresses()) == [ref.sha256]


def test_bad_rules_are_refused_naming_the_field(tmp_path: Path) -> None:
    cases = {
        '[[gc.rules]]\nwhat = "logfiles"\naction = "tier"\n': (
            "gc.rules.0.what",
            "'datasets', 'models', 'reports' or 'logs'",
        ),
        '[[gc.rules]]\nwhat = "models"\naction = "tier"\nolder_than = "ninety"\n': (
            "gc.rules.0.older_than",
            "like 90d, 12h, 30m or 0",
        ),
        '[[gc.rules]]\nwhat = "models"\naction = "delete"\n': (
            "gc.rules.0",
            'action = "delete" applies to what = "datasets" or "logs" only',
        ),
        '[[gc.rules]]\nwhat = "models"\naction = "tier"\nkeep_versions = -1\n': (
            "gc.rules.0.keep_versions",
            "greater than or equal to 0",
        ),
        '[[gc.rules]]\nwhat = "logs"\naction = "tier"\n': (
            "gc.rules.0",
            'log parts are deleted (action = "delete") once no monitoring window needs them',
        ),
        '[gc]\ncold_class = "tape"\n': ("gc.cold_class 'tape'", "s3-standard-ia"),
    }
    for i, (toml, (field, expected)) in enumerate(cases.items()):
        project = tmp_path / f"p{i}"
        project.mkdir()
        (project / "mlship.toml").write_text(toml)
        result = invoke_cli("gc", home=tmp_path / "home", cwd=project, check=False)
        # a list index as gc.rules.0 or as gc.rules[0], the way the settings loader spells it
        message = re.sub(r"\[(\d+)\]", r".\1", " ".join(result.stderr.split()))
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert field in message and expected in message, message


def test_tiering_in_a_bucket_moves_objects_under_cold(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    prefix = f"gc-tier/{secrets.token_hex(6)}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/{prefix}"}
    project, rows = _two_versions(tmp_path, home, env)
    old_model, old_run, new_model, _ = _facts(home, env)
    client = make_client(object_store.settings())

    def keys(folder: str) -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=object_store.bucket, Prefix=f"{prefix}/{folder}"
        )
        return {
            e["Key"][len(prefix) + len(folder) + 1 :] for p in pages for e in p.get("Contents", [])
        }

    before = keys("objects/")
    dry = " ".join(run_cli("gc", home=home, env=env, cwd=project).stdout.split())
    assert old_model[:16] in dry and "Dry run: nothing was deleted or moved" in dry, dry
    assert keys("objects/") == before and not keys("cold/objects/")

    applied = run_cli("gc", "--apply", home=home, env=env, cwd=project).stdout
    assert "artifact(s) to cold." in applied, applied
    cold = keys("cold/objects/")
    assert old_model[:2] + "/" + old_model[2:] in cold
    assert new_model[:2] + "/" + new_model[2:] in keys("objects/")
    assert keys("objects/") | cold == before and not keys("objects/") & cold

    status = _everything_still_works(home, rows, old_run, env)
    assert f"Signed artifacts: {len(before)} of {len(before)}" in status, status
    again = " ".join(run_cli("gc", home=home, env=env, cwd=project).stdout.split())
    assert "To tier: 0 artifact(s)" in again, again

    # A service without storage classes (SeaweedFS refuses the copy) is named, and nothing moves.
    (project / "mlship.toml").write_text(
        RULES.replace("[gc]\n", '[gc]\nstorage_class = "STANDARD_IA"\n').replace(
            "keep_versions = 1", "keep_versions = 0"
        )
    )
    refused = run_cli("gc", "--apply", home=home, env=env, cwd=project, check=False)
    message = " ".join(refused.stderr.split())
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "unset gc.storage_class to tier into the cold/ prefix" in message, message
    assert new_model[:2] + "/" + new_model[2:] in keys("objects/")
    out = tmp_path / "after-refusal.csv"
    scored = run_cli("predict", "churn:2", str(rows), "-o", str(out), home=home, env=env)
    assert "Scored 200 rows with churn:2" in scored.stdout


LOG_RULES = """
[gc]
monitor_rules = "alerts.yaml"

[[gc.rules]]
what = "logs"
action = "delete"
older_than = "0"
"""

ALERTS = """
rules:
  - name: drift
    metric: drift.share
    window: 300 rows
    condition: "> 0.5"
"""


def test_old_log_parts_go_unless_a_monitoring_window_reads_them(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from mlship.costs.ledger import USAGE, UsageRecord, write_usage
    from mlship.store.logstore import PREDICTIONS

    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    assert "Registered churn:1" in invoke_cli("run", str(spec), home=home).stdout
    rows = spec.parent / "data" / "new_customers.csv"
    for i in range(3):  # three parts of 200 rows each in the batch prediction log
        out = tmp_path / f"scored-{i}.csv"
        invoke_cli("predict", "churn", str(rows), "-o", str(out), home=home)
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        start = datetime.now(UTC) - timedelta(hours=1)
        write_usage(
            workspace.logs,
            [UsageRecord(kind="batch", started_at=start, ended_at=start + timedelta(seconds=5))],
            workspace.sealing,
        )
        batch = workspace.logs.parts(f"{PREDICTIONS}/batch")
        usage = workspace.logs.parts(USAGE)
    finally:
        workspace.close()
    # Each mlship predict also recorded its usage: three parts of the ledger, and the one above.
    assert len(batch) == 3 and len(usage) == 4
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlship.toml").write_text(LOG_RULES)
    (project / "alerts.yaml").write_text(ALERTS)

    dry = " ".join(invoke_cli("gc", home=home, cwd=project).stdout.split())
    assert "Log parts to delete" in dry and "To delete: 5 log part(s)" in dry, dry
    assert "Dry run: nothing was deleted or moved" in dry

    applied = " ".join(invoke_cli("gc", "--apply", home=home, cwd=project).stdout.split())
    assert "Deleted 5 log part(s)." in applied, applied
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        left = workspace.logs.parts(f"{PREDICTIONS}/batch")
        assert left == sorted(batch, key=lambda p: p.written_ns)[-2:]  # 300 rows: two parts
        assert workspace.logs.parts(USAGE) == []
    finally:
        workspace.close()
    again = " ".join(invoke_cli("gc", home=home, cwd=project).stdout.split())
    assert "log part(s)" not in again, again


def test_old_log_parts_go_from_a_bucket_too(object_store: ObjectStore, tmp_path: Path) -> None:
    from mlship.store.logstore import PREDICTIONS

    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    prefix = f"gc-logs/{secrets.token_hex(6)}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/{prefix}"}
    assert "Registered churn:1" in run_cli("run", str(spec), home=home, env=env).stdout
    rows = spec.parent / "data" / "new_customers.csv"
    for i in range(2):
        out = tmp_path / f"scored-{i}.csv"
        run_cli("predict", "churn", str(rows), "-o", str(out), home=home, env=env)
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlship.toml").write_text(LOG_RULES)
    (project / "alerts.yaml").write_text(ALERTS.replace("300 rows", "100 rows"))

    dry = " ".join(run_cli("gc", home=home, env=env, cwd=project).stdout.split())
    # One part of the batch log (the other holds the rows the 100-row window needs) and the
    # usage ledger's two parts, one per mlship predict.
    assert "To delete: 3 log part(s)" in dry and f"{PREDICTIONS}/batch" in dry, dry
    applied = " ".join(run_cli("gc", "--apply", home=home, env=env, cwd=project).stdout.split())
    assert "Deleted 3 log part(s)." in applied, applied
    client = make_client(object_store.settings())
    listed = client.list_objects_v2(
        Bucket=object_store.bucket, Prefix=f"{prefix}/{PREDICTIONS}/batch/"
    )
    left = [e["Key"] for e in listed.get("Contents", []) if e["Key"].endswith(".parquet")]
    assert len(left) == 1, left
