"""The TLS options of the servers: both files checked before anything listens, each problem named
with its file and option; a matching pair becomes uvicorn's arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlship.errors import ConfigError
from mlship.security.tls import uvicorn_tls
from tests.conftest import invoke_cli
from tests.tls import self_signed


def test_a_matching_pair_becomes_uvicorn_arguments(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert uvicorn_tls(cert, key) == {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    assert uvicorn_tls(None, None) == {}


def test_every_bad_file_is_named(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "one")
    other_cert, _ = self_signed(tmp_path / "two")
    with pytest.raises(ConfigError, match="--tls-cert needs --tls-key"):
        uvicorn_tls(cert, None)
    with pytest.raises(ConfigError, match="--tls-key needs --tls-cert"):
        uvicorn_tls(None, key)
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigError, match=rf"--tls-cert {missing}: no such file"):
        uvicorn_tls(missing, key)
    with pytest.raises(ConfigError, match=rf"--tls-key {tmp_path}: not a file"):
        uvicorn_tls(cert, tmp_path)
    with pytest.raises(ConfigError, match=r"cannot be used together: KEY_VALUES_MISMATCH"):
        uvicorn_tls(other_cert, key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match=rf"--tls-cert {garbage} and --tls-key {key} cannot"):
        uvicorn_tls(garbage, key)


def test_serve_refuses_a_missing_certificate_before_loading_anything(tmp_path: Path) -> None:
    _, key = self_signed(tmp_path)
    missing = tmp_path / "cert.pem.missing"
    result = invoke_cli(
        "serve", "churn:1", "--tls-cert", str(missing), "--tls-key", str(key),
        home=tmp_path / "ws", check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"--tls-cert {missing}: no such file" in " ".join(result.stderr.split())
    assert not (tmp_path / "ws").exists()  # refused before the workspace was opened
