"""Duplicate keys, provenance after a join, the list of declared checks and the one PSI, through
``mlship data validate|show|diff`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlship.data.stability import PSI_MAX
from mlship.monitor.drift import column_drift
from tests.conftest import invoke_cli
from tests.e2e.test_data_cli import dataset_hash, stored_frame, table_rows

SPEC = """\
name: accounts
task: classification
sources:
  - name: customers
    path: customers.csv
    key: [customer_id]
    on_duplicate: POLICY
  - name: plans
    path: plans.csv
    key: [plan_id]
combine:
  method: join
  base: customers
  joins:
    - {source: plans, on: [plan_id], how: left}
columns:
  - {name: customer_id, type: string, role: id}
  - {name: age, type: integer, checks: [{min: 18}]}
  - {name: plan_id, type: string}
  - {name: email, type: string, role: pii}
  - {name: price, type: float, checks: [{min: 0}]}
  - {name: churned, type: category, role: target}
checks:
  max_quarantine: 0.9
models:
  - {estimator: logistic_regression}
metric: accuracy
"""

CUSTOMERS = """\
customer_id,age,plan_id,email,churned
C1,30,P1,a@example.com,yes
C2,40,P2,b@example.com,no
C1,30,P1,a@example.com,yes
C3,50,P3,c@example.com,no
C4,61,P1,d@example.com,yes
C4,62,P1,e@example.com,no
C5,70,P1,f@example.com,no
"""

PLANS = """\
plan_id,price
P1,10
P2,-5
P3,30
P3,31
"""


def _project(root: Path, policy: str = "quarantine") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "plans.csv").write_text(PLANS, encoding="utf-8")
    spec = root / "pipeline.yaml"
    spec.write_text(SPEC.replace("POLICY", policy), encoding="utf-8")
    return spec


def test_duplicate_keys_and_joined_values_are_quarantined_naming_their_lines(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    result = invoke_cli("data", "validate", str(_project(tmp_path / "p")), home=home)
    out = result.stdout
    # customers: C1 twice exactly (collapsed), C4 twice with different values (quarantined);
    # plans: P3 twice with different prices (both quarantined, and C3 that joins it).
    assert "Validation: 8 rows in, 2 kept, 6 quarantined" in out
    assert (
        "Duplicate keys in customers (customer_id): 1 exact copies collapsed, 1 conflicting "
        "keys, quarantined" in out
    )
    assert "Duplicate keys in plans (plan_id): 0 exact copies collapsed, 1 conflicting keys" in out
    declared_part = out[out.index("Declared checks") :]
    declared = {(row["column"], row["check"]): row for row in table_rows(declared_part, "column")}
    assert declared[("age", "min")] | {"detail": ""} == {
        "column": "age",
        "check": "min",
        "result": "passed",
        "tested": "4",
        "failed": "0",
        "detail": "",
    }
    assert (declared[("price", "min")]["result"], declared[("price", "min")]["failed"]) == (
        "failed",
        "1",
    )

    quarantine = pl.read_parquet(home / "reports" / "accounts-quarantine.parquet")
    reasons = {
        (source, row): reason
        for source, row, reason in quarantine.select("_source", "_row", "_reasons").rows()
    }
    assert reasons == {
        ("customers", "line 3"): "price: -5.0 is below the minimum 0 (from plans line 3)",
        ("customers", "line 5"): "duplicate key (plan_id = 'P3') in joined source 'plans': its "
        "copies at lines 4, 5 disagree, so all are quarantined",
        ("customers", "line 6"): "duplicate key (customer_id = 'C4') in source 'customers': "
        "lines 6, 7 disagree on age (61 at line 6, 62 at line 7); email (private values); churned "
        "('yes' at line 6, 'no' at line 7)",
        ("customers", "line 7"): "duplicate key (customer_id = 'C4') in source 'customers': "
        "lines 6, 7 disagree on age (61 at line 6, 62 at line 7); email (private values); churned "
        "('yes' at line 6, 'no' at line 7)",
        ("plans", "line 4"): "duplicate key (plan_id = 'P3') in source 'plans': lines 4, 5 "
        "disagree on price (30.0 at line 4, 31.0 at line 5)",
        ("plans", "line 5"): "duplicate key (plan_id = 'P3') in source 'plans': lines 4, 5 "
        "disagree on price (30.0 at line 4, 31.0 at line 5)",
    }
    assert quarantine.filter(pl.col("_row") == "line 3")["_row:plans"].to_list() == ["line 3"]
    assert "example.com" not in " ".join(reasons.values())

    shown = invoke_cli("data", "show", dataset_hash(out), home=home).stdout
    assert "Duplicate keys in customers (customer_id): 1 exact copies collapsed" in shown
    declared_part = shown[shown.index("Declared checks") :]
    assert {row["check"] for row in table_rows(declared_part, "column")} >= {
        "on_duplicate quarantine (customer_id) in customers",
        "min",
        "duplicate row",
        "max_quarantine",
    }
    html = (home / "reports" / "accounts-data.html").read_text(encoding="utf-8")
    assert "Duplicate keys" in html and "No checks were declared" not in html


@pytest.mark.parametrize(
    ("policy", "kept_age"), [("keep_first", 61), ("keep_last", 62), ("{newest_by: age}", 62)]
)
def test_a_declared_policy_keeps_one_copy(tmp_path: Path, policy: str, kept_age: int) -> None:
    home = tmp_path / "home"
    out = invoke_cli("data", "validate", str(_project(tmp_path / "p", policy)), home=home).stdout
    assert "1 conflicting keys, kept " in out
    dataset = pl.read_parquet(home / "reports" / "accounts-quarantine.parquet")
    assert "C4" not in dataset["customer_id"].to_list()
    shown = invoke_cli("data", "show", dataset_hash(out), home=home).stdout
    assert "Duplicate keys in customers (customer_id)" in shown
    clean = stored_frame(home, dataset_hash(out))
    assert clean.filter(pl.col("customer_id") == "C4")["age"].to_list() == [kept_age]


def test_on_duplicate_fail_stops_with_the_source_key_and_lines(tmp_path: Path) -> None:
    result = invoke_cli(
        "data", "validate", str(_project(tmp_path / "p", "fail")), home=tmp_path / "h", check=False
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = " ".join((result.stdout + result.stderr).split())
    assert (
        "source 'customers' holds 1 key(s) in 2 rows whose copies disagree, and its "
        "on_duplicate is fail: duplicate key (customer_id = 'C4') in source 'customers': lines "
        "6, 7 disagree" in message
    )


DIFF_SPEC = """\
name: levels
task: regression
sources:
  - {name: levels, path: levels.csv}
columns:
  - {name: x, type: float}
  - {name: label, type: category}
  - {name: y, type: float, role: target}
checks:
  duplicates: allow
models:
  - {estimator: linear_regression}
metric: rmse
"""


def _levels(root: Path, seed: int, labels: str) -> Path:
    """A column where 90% of the values are 0, and a label column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, 300)
    x[rng.random(300) < 0.9] = 0.0
    root.mkdir(parents=True, exist_ok=True)
    lines = ["x,label,y"] + [f"{v:.3f},{labels}{i % 12},{i}" for i, v in enumerate(x)]
    (root / "levels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "pipeline.yaml").write_text(DIFF_SPEC, encoding="utf-8")
    return root / "pipeline.yaml"


def test_data_diff_psi_matches_the_monitor_on_ties_and_is_maximal_without_overlap(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = dataset_hash(
        invoke_cli("data", "validate", str(_levels(tmp_path / "a", 1, "old")), home=home).stdout
    )
    second = dataset_hash(
        invoke_cli("data", "validate", str(_levels(tmp_path / "b", 2, "new")), home=home).stdout
    )
    diff = invoke_cli("data", "diff", first, second, home=home).stdout
    columns = {row["column"]: row for row in table_rows(diff, "column")}
    drift = column_drift(stored_frame(home, first), stored_frame(home, second), "x", method="psi")
    assert float(columns["x"]["PSI"]) == pytest.approx(drift.statistic, abs=5e-4)
    assert float(columns["x"]["PSI"]) < 0.1  # two samples of one distribution
    assert float(columns["label"]["PSI"]) == pytest.approx(PSI_MAX, abs=5e-4)
    assert f"{PSI_MAX:.1f} means the values do not overlap at all" in diff


MERGED_SPEC = """\
name: merged
task: classification
sources:
  - {name: crm, path: crm.csv}
  - {name: billing, path: billing.csv}
combine:
  method: join
  base: crm
  joins:
    - {source: billing, on: [id], how: left}
  conflicts: {key: [id], rule: prefer, prefer: [crm, billing]}
columns:
  - {name: id, type: integer, role: id}
  - {name: plan, type: category, checks: [{allowed: [basic, pro]}]}
  - {name: churned, type: category, role: target}
checks:
  max_quarantine: 1.0
models:
  - {estimator: logistic_regression}
metric: accuracy
"""


def test_a_column_merged_from_two_sources_names_the_line_of_the_value_kept(
    tmp_path: Path,
) -> None:
    """crm is preferred for ``plan``; where it has none, billing's value fills in: a failing
    value names the line of whichever source it came from."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "crm.csv").write_text(
        "id,plan,churned\n1,basic,yes\n2,gold,no\n3,,no\n", encoding="utf-8"
    )
    (root / "billing.csv").write_text("id,plan\n3,silver\n2,pro\n", encoding="utf-8")
    (root / "pipeline.yaml").write_text(MERGED_SPEC, encoding="utf-8")
    home = tmp_path / "home"
    invoke_cli("data", "validate", str(root / "pipeline.yaml"), home=home)
    quarantine = pl.read_parquet(home / "reports" / "merged-quarantine.parquet")
    reasons = dict(zip(quarantine["_row"], quarantine["_reasons"], strict=True))
    assert reasons == {
        "line 3": "plan: gold is not one of: basic, pro",
        "line 4": "plan: silver is not one of: basic, pro (from billing line 2)",
    }


def test_the_combine_report_counts_rows_read_not_stand_ins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke_cli("data", "validate", str(_project(tmp_path / "p")), home=home)
    report = json.loads((home / "reports" / "accounts-data.json").read_text(encoding="utf-8"))
    combine = report["validation"]["combine"]
    # customers: 7 lines, 1 exact copy collapsed, 2 conflicting copies set aside; plans: 4 lines,
    # 2 conflicting copies set aside.
    assert combine["rows_in"] == {"customers": 4, "plans": 2}
    assert combine["joins"][0]["rows_right"] == 2
