"""Serving over real HTTP on 127.0.0.1: a canary split, sticky keys, shadows, hot swap under load,
MLflow's and the v2 inference protocols, Prometheus metrics, and a prediction log that keeps
every answer through a graceful shutdown."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mlship.monitor.predlog import read_log
from tests.conftest import run_cli, two_churn_versions
from tests.serving import RECORD, serving


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with churn:1 and churn:2 (trained with different regularisation)."""
    return two_churn_versions(tmp_path_factory.mktemp("serving"))


def _deployment(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_a_canary_gets_its_share_and_keys_stick(home: Path, tmp_path: Path) -> None:
    spec = _deployment(
        tmp_path / "canary.yaml",
        """name: canary
routes:
  - {model: "churn:1", weight: 0.9}
  - {model: "churn:2", weight: 0.1}
log: {enabled: false}
""",
    )
    with serving(str(spec), home) as server, httpx.Client(base_url=server.base) as client:
        versions = Counter(
            client.post("/predict", json={"records": [RECORD]}).json()["version"]
            for _ in range(800)
        )
        assert versions[1] + versions[2] == 800
        # 0.05 is 4.7 standard deviations of the canary's share of 800 requests
        assert abs(versions[2] / 800 - 0.1) <= 0.05, versions
        # The same key lands on the same version every time; different keys spread.
        for key in ("customer-1", "customer-2", "customer-3"):
            pinned = {
                client.post(
                    "/predict", json={"records": [RECORD]}, headers={"X-Request-Key": key}
                ).json()["version"]
                for _ in range(20)
            }
            assert len(pinned) == 1
        keyed = Counter(
            client.post("/predict", json={"records": [RECORD], "key": f"k{i}"}).json()["version"]
            for i in range(500)
        )
        assert abs(keyed[2] / 500 - 0.1) <= 0.05, keyed


def test_shadows_answer_into_the_log_only_and_shutdown_loses_nothing(
    home: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "predictions"
    spec = _deployment(
        tmp_path / "shadow.yaml",
        f"""name: shadowed
routes: [{{model: "churn:1"}}]
shadows: ["churn:2"]
log: {{directory: {logs}, flush_rows: 100000, flush_seconds: 600}}
""",
    )
    sent: list[str] = []
    with serving(str(spec), home) as server, httpx.Client(base_url=server.base) as client:
        for i in range(25):
            records = [RECORD, {**RECORD, "tenure_months": i}]
            response = client.post("/predict", json={"records": records})
            assert response.status_code == 200
            assert response.json()["version"] == 1  # never the shadow's answer
            sent.append(response.headers["X-Request-Id"])
        assert not list(logs.glob("part-*.parquet"))  # nothing written yet: it all waits
        server.stop()  # SIGTERM: the waiting rows are written before the process ends
    log = read_log(logs).to_pandas()
    routed = log[log["role"] == "route"]
    shadowed = log[log["role"] == "shadow"]
    assert len(routed) == 50 and set(routed["version"]) == {1}
    assert len(shadowed) == 50 and set(shadowed["version"]) == {2}
    assert set(routed["request_id"]) == set(sent) == set(shadowed["request_id"])
    assert (log["deployment"] == "shadowed").all()
    assert '"tenure_months":24' in "".join(routed["input"])


def test_promotion_and_rollback_while_under_load_fail_no_request(
    home: Path, tmp_path: Path
) -> None:
    run_cli(
        "models", "promote", "churn:1", "--to", "production", home=home, env={"MLSHIP_USER": "a"}
    )
    run_cli("models", "approve", "churn:1", home=home, env={"MLSHIP_USER": "b"})
    spec = _deployment(
        tmp_path / "live.yaml",
        """name: live
routes: [{model: "churn@production"}]
refresh_seconds: 0.3
log: {enabled: false}
""",
    )
    seen: list[tuple[float, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post("/predict", json={"records": [RECORD]})
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        seen.append((time.monotonic(), response.json()["version"]))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    with serving(str(spec), home) as server:
        workers = [threading.Thread(target=load, args=(server.base,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        run_cli(
            "models",
            "promote",
            "churn:2",
            "--to",
            "production",
            home=home,
            env={"MLSHIP_USER": "a"},
        )
        run_cli("models", "approve", "churn:2", home=home, env={"MLSHIP_USER": "b"})
        promoted = time.monotonic()
        deadline = promoted + 10
        while not any(v == 2 and t > promoted for t, v in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        run_cli("models", "rollback", "churn", home=home, env={"MLSHIP_USER": "c"})
        rolled = time.monotonic()
        while (
            not any(v == 1 and t > rolled + 1 for t, v in seen) and time.monotonic() < rolled + 10
        ):
            time.sleep(0.1)
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures, failures[:5]
    first_v2 = min(t for t, v in seen if v == 2)
    assert first_v2 - promoted < 5, "the promotion reached the server within seconds"
    assert seen[-1][1] == 1 and any(v == 1 and t > rolled for t, v in seen)
    assert len(seen) > 100


def test_mlflow_and_v2_protocols_and_metrics(home: Path) -> None:
    frame = pd.DataFrame([RECORD, {**RECORD, "contract": "two-year", "tenure_months": 70}])
    with (
        serving("churn:1", home, "--no-prediction-log") as server,
        httpx.Client(base_url=server.base) as client,
    ):
        native = client.post("/predict", json={"records": frame.to_dict("records")}).json()
        expected = native["predictions"]
        split = frame.to_dict(orient="split")
        for payload in (
            {"dataframe_split": {"columns": split["columns"], "data": split["data"]}},
            {"dataframe_records": frame.to_dict("records")},
            {"instances": frame.to_dict("records")},
            {"inputs": frame.to_dict("list")},
        ):
            answer = client.post("/invocations", json=payload)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": expected}
        bad = client.post("/invocations", json={"dataframe_records": [{**RECORD, "age": "old"}]})
        assert bad.status_code == 422 and "records[0].age" in bad.json()["message"]

        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
        meta = client.get("/v2/models/churn").json()
        assert meta["name"] == "churn" and meta["versions"] == ["1"]
        assert {"name": "age", "datatype": "INT64", "shape": [-1]} in meta["inputs"]
        tensors = [
            {"name": name, "shape": [2], "datatype": "BYTES", "data": frame[name].tolist()}
            for name in frame.columns
        ]
        infer = client.post("/v2/models/churn/infer", json={"id": "r1", "inputs": tensors})
        assert infer.status_code == 200, infer.text
        body = infer.json()
        assert body["id"] == "r1" and body["model_version"] == "1"
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["predict"]["data"] == expected
        assert outputs["probabilities"]["shape"] == [2, 2]
        assert client.get("/v2/models/fraud").status_code == 404

        metrics = client.get("/metrics").text
        assert (
            'mlship_requests_total{model="churn",route="/invocations",status="200",version="1"} 4.0'
            in metrics
        )
        assert "mlship_request_seconds_bucket" in metrics
        assert 'mlship_errors_total{reason="invalid input",route="/invocations"} 1.0' in metrics
        output = server.stop()
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert any(
        '"path": "/v2/models/churn/infer"' in line and '"request_id"' in line for line in lines
    )


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(home: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = [
        {"records": [{**RECORD, "tenure_months": i, "support_calls": j} for j in range(i % 3 + 1)]}
        for i in range(240)
    ]
    with serving("churn:1", home, "--no-prediction-log") as server:
        with httpx.Client(base_url=server.base) as client:
            alone = [client.post("/predict", json=body).json() for body in bodies[:40]]

        def send(body: dict[str, Any]) -> dict[str, Any]:
            with httpx.Client(base_url=server.base, timeout=30) as client:
                answer: dict[str, Any] = client.post("/predict", json=body).json()
                return answer

        with ThreadPoolExecutor(max_workers=16) as pool:
            together = list(pool.map(send, bodies))
        metrics = httpx.get(f"{server.base}/metrics").text
    for single, batched in zip(alone, together[:40], strict=True):
        assert batched["predictions"] == single["predictions"]
        for mine, reference in zip(batched["probabilities"], single["probabilities"], strict=True):
            assert mine == pytest.approx(reference)
    assert [len(t["predictions"]) for t in together] == [i % 3 + 1 for i in range(240)]
    count = float(
        next(
            line.split()[-1]
            for line in metrics.splitlines()
            if line.startswith("mlship_batch_requests_count")
        )
    )
    total = float(
        next(
            line.split()[-1]
            for line in metrics.splitlines()
            if line.startswith("mlship_batch_requests_sum")
        )
    )
    assert total == 280 and count < total, (count, total)  # some predict calls served several


def test_several_workers_share_the_port_the_metrics_and_the_log(home: Path, tmp_path: Path) -> None:
    import psutil

    logs = tmp_path / "predictions"
    spec = _deployment(
        tmp_path / "workers.yaml",
        f"""name: workers
routes: [{{model: "churn:1"}}]
log: {{directory: {logs}, flush_rows: 100000, flush_seconds: 600}}
""",
    )
    with serving(str(spec), home, "--workers", "2") as server:
        children = psutil.Process(server.process.pid).children()
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2
        for _ in range(120):  # a new connection each time: the kernel spreads them
            assert (
                httpx.post(f"{server.base}/predict", json={"records": [RECORD]}).status_code == 200
            )
        metrics = httpx.get(f"{server.base}/metrics").text
        server.stop()
    served = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("mlship_requests_total{")
    )
    assert served == 120  # every worker's requests, whichever worker answered /metrics
    log = read_log(logs).to_pandas()
    assert len(log) == 120 and set(log["version"]) == {1}
