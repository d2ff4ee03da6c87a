"""Fuzzing ``mlship serve``'s OpenAPI document with Schemathesis: no request makes it fail (5xx)
or die, on any protocol (native, MLflow, v2, feedback, the operations endpoints).

A real ``mlship serve`` process serves the small churn model from a copy of the trained
workspace (feedback the cases send is stored there). Every operation gets a fixed number of
cases that fit its schema and as many that do not (Hypothesis, derandomised so a failure
reproduces); after each case the server must still be running. Since the schema of ``/predict``
is the model's signature, the positive cases reach the model itself, with generated values
(huge numbers, odd text) in every input.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from mlship.workspace import Workspace
from tests.serving import Server, serving

EXAMPLES = 30
"""Cases per operation and generation mode: enough to reach each one's edges, bounded for CI."""


@pytest.fixture(scope="module")
def fuzzed(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fuzz-serve") / "ws"
    shutil.copytree(trained.settings.home, home)
    with serving("churn:1", home, "--no-prediction-log", "--max-records", "200") as server:
        yield server


def test_no_generated_request_makes_the_model_server_fail(fuzzed: Server) -> None:
    spec = httpx.get(f"{fuzzed.base}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}
    failures: list[str] = []

    def fuzz(operation: Any, mode: GenerationMode) -> None:
        label = f"{operation.label} ({mode.value})"
        sent[label] = 0

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case: Any) -> None:
            response = case.call(base_url=fuzzed.base, timeout=30)
            sent[label] += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{label}: {response.status_code} {response.text[:300]}")
            if fuzzed.process.poll() is not None:
                failures.append(f"{label}: the server exited {fuzzed.process.returncode}")
                raise AssertionError(fuzzed.output_text()[-3000:])

        try:
            send()
        except Unsatisfiable:  # nothing to get wrong in it (a GET without parameters)
            assert mode is GenerationMode.NEGATIVE and sent[label] == 0, label
            del sent[label]

    operations = []
    for found in schema.get_all_operations():
        assert isinstance(found, Ok), found
        operations.append(found.ok())
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode)

    total = sum(sent.values())
    print(
        f"fuzzing mlship serve: {len(operations)} operations, {total} cases, "
        f"{len(failures)} failures; statuses {dict(sorted(statuses.items()))}"
    )
    labels = {operation.label for operation in operations}
    assert {"POST /predict", "POST /invocations", "POST /v2/models/{name}/infer",
            "POST /feedback"} <= labels  # fmt: skip
    assert total >= len(sent) * 5
    assert not failures, "\n".join(sorted(set(failures))[:30])
    assert httpx.get(f"{fuzzed.base}/health", timeout=30).status_code == 200
    output = fuzzed.output_text()
    assert "Traceback" not in output, output[-3000:]
