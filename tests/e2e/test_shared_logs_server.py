"""Logs on a tracking server. With ``MLSHIP_URL`` set, ``mlship predict``, ``mlship serve`` and
``mlship monitor feedback`` on separate client homes put their parts on the server (in the
server's own home), ``mlship monitor status`` from another client reads all of them, compaction
through the server changes no figure, and a viewer, who may not write logs, still gets its
scores with a warning that names the server."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.backends import Backend, open_backend
from tests.conftest import run_cli
from tests.quick_project import fast_churn
from tests.serving import RECORD, serving


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with open_backend("http-sqlite", tmp_path_factory.mktemp("logs-server"), None) as backend:
        yield backend


def _said(text: str) -> str:
    return " ".join(text.split())


def test_clients_of_a_server_share_its_logs(tracking: Backend, tmp_path: Path) -> None:
    assert tracking.server is not None and tracking.server_home is not None
    url = tracking.server.base
    env = {
        "MLSHIP_URL": url,
        "MLSHIP_TOKEN": str(tracking.admin_token),
        "MLSHIP_PII_KEY": "logs-team-pseudonym-key-" + "0" * 32,
    }
    spec = fast_churn(tmp_path / "churn")
    run_cli("run", str(spec), home=tmp_path / "trainer", env=env)

    inputs = spec.parent / "data" / "new_customers.csv"
    scorer = tmp_path / "scorer"
    for _ in range(2):
        out = tmp_path / "scored.csv"
        scored = run_cli("predict", "churn:1", str(inputs), "-o", str(out), home=scorer, env=env)
        assert f"Prediction log: {url} (predictions/batch)" in scored.stdout, scored.stdout
    batch = len(pd.read_csv(inputs))

    with serving("churn:1", tmp_path / "replica", env=env) as server:
        for i in range(3):
            answer = httpx.post(
                f"{server.base}/predict",
                json={"records": [RECORD]},
                headers={"x-request-id": f"s-{i}"},
            )
            assert answer.status_code == 200, answer.text
    assert f"Prediction log: {url} (predictions/churn-1)" in server.output_text()

    monitor = tmp_path / "monitor"
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\ns-0,no\ns-1,yes\n")
    stored = run_cli("monitor", "feedback", str(labels), home=monitor, env=env)
    assert f"Stored 2 labels from {labels} (churn 2) in {url} (feedback)" in _said(stored.stdout)

    on_server = sorted(p.relative_to(tracking.server_home) for p in
                       tracking.server_home.rglob("part-*.parquet"))  # fmt: skip
    assert [str(p.parent) for p in on_server if p.parts[0] != "usage"] == [
        "feedback", "predictions/batch", "predictions/batch", "predictions/churn-1"
    ]  # fmt: skip
    # What scoring and serving used is recorded on the server too, in the usage ledger.
    assert any(p.parts[0] == "usage" for p in on_server), on_server
    for client in ("trainer", "scorer", "replica", "monitor"):
        assert not list((tmp_path / client).rglob("part-*.parquet"))

    def status() -> dict[str, Any]:
        shown = run_cli("monitor", "status", "churn", "--json", home=monitor, env=env)
        figures: dict[str, Any] = json.loads(shown.stdout)
        return figures

    before = status()
    assert before["rows"] == 2 * batch + 3
    assert before["metrics"]["performance.labelled"] == 2
    compacted = run_cli("monitor", "compact", home=monitor, env=env)
    assert f"Compaction of the logs in {url}" in _said(compacted.stdout)
    # Two prediction logs, the labels and the usage ledger (whose parts the servers' flushes
    # and the monitoring passes wrote, as many as their timing made)
    assert re.search(r"Merged \d+ parts into \d+ in 4 logs", compacted.stdout), compacted.stdout
    assert len(list((tracking.server_home / "predictions" / "batch").glob("part-*"))) == 1
    after = status()
    assert (after["rows"], after["requests"], after["metrics"]) == (
        before["rows"], before["requests"], before["metrics"]
    )  # fmt: skip

    # A viewer may read but not write logs: its scores come with a warning naming the server.
    viewer = tracking.workspace_as(f"viewer-{secrets.token_hex(3)}", "viewer")
    assert viewer.settings.token is not None
    looking = {**env, "MLSHIP_TOKEN": viewer.settings.token.get_secret_value()}
    rows = tmp_path / "in.csv"
    pd.DataFrame([RECORD, {**RECORD, "age": 30}]).to_csv(rows, index=False)
    out = tmp_path / "out.csv"
    result = run_cli("predict", "churn:1", str(rows), "-o", str(out), home=monitor, env=looking)
    assert len(pd.read_csv(out)) == 2
    said = _said(result.stderr)
    assert f"warning: the prediction log at {url} (predictions/batch)" in said, said
    assert "refused the request" in said and "2 of the 2 rows scored are not" in said, said
