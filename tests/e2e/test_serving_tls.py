"""``mlship serve`` over HTTPS with a self-signed certificate: a client that trusts the certificate
gets predictions, plain HTTP to the same port gets nothing, and a client without the certificate
refuses the server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mlship.workspace import Workspace
from tests.serving import RECORD, serving
from tests.tls import self_signed, trusting


def test_https_serves_only_clients_that_trust_the_certificate(
    trained: Workspace, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path / "tls")
    context = trusting(cert)
    home = trained.settings.home
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--no-prediction-log")
    with serving("churn:1", home, *args, tls=context) as server:
        assert server.base.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=server.base, verify=context) as client:
            answer = client.post("/predict", json={"records": [RECORD]})
            assert answer.status_code == 200
            body = answer.json()
            assert body["model"] == "churn" and body["version"] == 1
            assert body["predictions"][0] in ("no", "yes")
        plain = server.base.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{plain}/predict", json={"records": [RECORD]}, timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.base}/health", timeout=5)  # the system's CAs only
        output = server.stop()
    assert f"on {server.base}" in output
