"""``mlship server`` over HTTPS with a self-signed certificate: clients that trust it work, the
rest are refused, and plain HTTP gets nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import invoke_cli
from tests.tls import self_signed
from tests.tracking import team_server


def test_the_server_speaks_https_to_clients_that_trust_its_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    database = f"sqlite:///{tmp_path / 'team.db'}"
    with team_server(tmp_path, database, tls=(cert, key)) as team:
        assert team.url.startswith("https://")
        home = tmp_path / "client"
        whoami = invoke_cli("users", "list", home=home, env=team.env("admin"))
        assert "alice" in whoami.stdout and "scientist" in whoami.stdout

        untrusting = {k: v for k, v in team.env("admin").items() if k != "MLSHIP_CA_BUNDLE"}
        refused = invoke_cli("users", "list", home=home, env=untrusting, check=False)
        assert refused.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr.replace("\n", "")

        plain = team.url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{plain}/api/v1/health", headers=team.headers("admin"), timeout=5)
