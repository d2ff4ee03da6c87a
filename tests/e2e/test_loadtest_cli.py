"""``mlship loadtest`` and ``mlship deploy haproxy`` from the command line: what they refuse, and
a load whose every request fails, reported by kind."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import invoke_cli
from tests.serving import free_port


def test_a_load_on_a_port_nobody_listens_on_fails_every_request_by_kind(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/predict"
    summary = tmp_path / "load.json"
    requests = tmp_path / "requests.jsonl"
    done = invoke_cli(
        "loadtest", url, "--rate", "20", "--duration", "0.5", "--clients", "2",
        "--kill-every", "0.2", "--kill-cmd", "echo stopped something",
        "--json", str(summary), "--requests", str(requests), home=tmp_path,
    )  # fmt: skip
    assert "Failed requests by kind" in done.stdout and "ConnectError" in done.stdout
    assert "stopped something" in done.stdout  # what the kill command said, and when
    found = json.loads(summary.read_text())
    assert (found["requests"], found["ok"], found["failed"]) == (10, 0, 10)
    assert found["errors"] == {"ConnectError": 10}
    assert [kill["output"] for kill in found["kills"]] == ["stopped something"] * 2
    assert found["gap"]["seconds"] > 0  # no answer at all: the whole run is one gap
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    assert len(lines) == 10 and {line["error"] for line in lines} == {"ConnectError"}
    assert [line["due_s"] for line in lines] == [i / 20 for i in range(10)]  # an open loop


def test_loadtest_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/predict"
    alone = invoke_cli("loadtest", url, "--rate", "1", "--duration", "1", "--kill-every", "1",
                       home=tmp_path, check=False)  # fmt: skip
    assert alone.returncode == 1
    assert "--kill-every and --kill-cmd go together" in alone.stderr
    bad = tmp_path / "request.json"
    bad.write_text("{records: [")
    payload = invoke_cli("loadtest", url, "--rate", "1", "--duration", "1", "--payload", str(bad),
                         home=tmp_path, check=False)  # fmt: skip
    assert payload.returncode == 1
    assert f"payload {bad}: not valid JSON" in payload.stderr
    scheme = invoke_cli("loadtest", "127.0.0.1:8000/predict", "--rate", "1", "--duration", "1",
                        home=tmp_path, check=False)  # fmt: skip
    assert scheme.returncode == 1 and "expected http://host:port/path" in scheme.stderr


def test_deploy_needs_a_target_or_server_not_both(tmp_path: Path) -> None:
    neither = invoke_cli("deploy", "haproxy", home=tmp_path, check=False)
    assert neither.returncode == 1
    assert "give a TARGET to serve" in neither.stderr and "--server" in neither.stderr
    both = invoke_cli("deploy", "haproxy", "churn:1", "--server", home=tmp_path, check=False)
    assert both.returncode == 1 and "not both" in both.stderr
    remote = invoke_cli("deploy", "haproxy", "--server", home=tmp_path, check=False,
                        env={"MLSHIP_URL": "http://127.0.0.1:9"})  # fmt: skip
    assert remote.returncode == 1 and "unset MLSHIP_URL" in remote.stderr


def test_deploy_refuses_a_directory_it_cannot_write(tmp_path: Path) -> None:
    in_the_way = tmp_path / "deploy"
    in_the_way.write_text("a file where the directory should be")
    refused = invoke_cli("deploy", "haproxy", "churn:1", "--dir", str(in_the_way),
                         home=tmp_path, check=False)  # fmt: skip
    assert refused.returncode == 1
    assert f"--dir {in_the_way}: cannot be used" in refused.stderr
    assert "Traceback" not in refused.stderr
