"""The registry through the command line: stage, four-eyes promotion, rollback, history, diff,
and ``MODEL@STAGE`` references used for scoring."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tests.conftest import run_cli, small_churn


def _as(user: str) -> dict[str, str]:
    return {"MLSHIP_USER": user}


def test_promotion_review_rollback_and_history(tmp_path: Path) -> None:
    spec = small_churn(tmp_path / "churn")
    home = tmp_path / "home"
    run_cli("run", str(spec), home=home, cwd=tmp_path)
    # The second version: C searched among strong regularisations only, so the diff shows it.
    text = spec.read_text()
    assert "C: {float: [0.001, 100.0], log: true}" in text
    spec.write_text(text.replace("[0.001, 100.0]", "[0.001, 0.01]"))
    run_cli("run", str(spec), home=home, cwd=tmp_path)

    def cli(*args: str, user: str = "alice", check: bool = True) -> str:
        result = run_cli(*args, home=home, cwd=tmp_path, env=_as(user), check=check)
        return " ".join((result.stdout + result.stderr).split())

    assert "churn:1: stage (none -> staging)" in cli("models", "promote", "churn:1")
    requested = cli("models", "promote", "churn:1", "--to", "production", "--reason", "first")
    assert "Promotion of churn:1 to production requested (#1)" in requested
    refused = run_cli("models", "approve", "churn:1", home=home, env=_as("alice"), check=False)
    assert refused.returncode == 1
    assert "alice requested the promotion of churn:1 and cannot also approve it" in " ".join(
        refused.stderr.split()
    )
    assert "Traceback" not in refused.stderr
    assert "churn:1: promoted (staging -> production)" in cli(
        "models", "approve", "churn:1", "--note", "ok", user="bob"
    )
    cli("models", "promote", "churn:2", "--to", "production")
    approved = cli("models", "approve", "churn:2", user="bob")
    assert "churn:2: promoted (none -> production); churn:1 archived" in approved

    listed = cli("models", "list")
    assert re.search(r"churn │ 2 │ 2 │ 2 │ - ", listed), listed

    # Score with whatever is in production, by stage.
    new = pd.read_csv(spec.parent / "data" / "new_customers.csv")
    cli("predict", "churn@production", str(spec.parent / "data" / "new_customers.csv"), "-o",
        str(tmp_path / "scored.csv"))  # fmt: skip
    assert len(pd.read_csv(tmp_path / "scored.csv")) == len(new)

    assert "churn:1: rollback (archived -> production); churn:2 archived" in cli(
        "models", "rollback", "churn", "--reason", "latency", user="carol"
    )
    shown = cli("models", "show", "churn@production")
    assert "Model churn:1" in shown and "production" in shown

    history = cli("models", "history", "churn")
    for expected in (
        "registered",
        "promotion requested",
        "approved",
        "promoted",
        "archived",
        "rollback",
    ):
        assert expected in history
    assert "carol" in history and "bob" in history and "reason=latency" in history

    cli("models", "tag", "churn:2", "owner=growth", "ticket=ML-7")
    cli("models", "describe", "churn:2", "Same features, stronger regularisation")
    shown = cli("models", "show", "churn:2")
    assert "owner=growth, ticket=ML-7" in shown and "stronger regularisation" in shown

    diff = cli("models", "diff", "churn:1", "churn:2")
    assert "churn:1 -> churn:2" in diff
    assert "params" in diff and "metrics (holdout)" in diff and "training" in diff
    assert "dataset sha256" not in diff  # the same data: unchanged fields are left out
    assert "dataset sha256" in cli("models", "diff", "churn:1", "churn:2", "--all")

    bad = run_cli("models", "promote", "churn", home=home, check=False)
    assert bad.returncode == 1 and "names no version; expected MODEL:VERSION" in bad.stderr
