"""A tracking server whose artifact store the disk refuses: uploads get a 507 (full) or a 503
(read-only) naming the store and what its operator must do, never a 500, and a client's command
says it is the server's store. The server runs in a private mount namespace over a real tmpfs
(see :mod:`tests.mounts`); the port is reachable from outside, only mounts are private."""

from __future__ import annotations

import hashlib
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import invoke_cli, mlship_env
from tests.mounts import UNSHARE, full, mount_namespaces, read_only
from tests.quick_project import fast_churn
from tests.serving import Server, free_port, start_server
from tests.tracking import TEAM_PII_KEY

_mount_namespaces = pytest.fixture(scope="module", autouse=True)(mount_namespaces)

BODY = b"model bytes " * 4096  # 48 KiB: more than a full 16-page tmpfs has left


@contextmanager
def server_over(mounts: str, root: Path, store: Path) -> Iterator[tuple[Server, str]]:
    """``mlship server`` with its artifact store at ``store``, after ``mounts``; an admin token."""
    home = root / "server"
    invoke_cli("users", "add", "admin", "--role", "admin", home=home)
    created = invoke_cli("tokens", "create", "admin", home=home).stdout
    token = next(line.strip() for line in created.splitlines() if line.strip().startswith("mls_"))
    port = free_port()
    command = shlex.join([sys.executable, "-m", "mlship", "server", "--port", str(port)])
    server = start_server(
        [*UNSHARE, "sh", "-ec", f"{mounts}\nexec {command}"],
        mlship_env(home, {"MLSHIP_ARTIFACT_ROOT": str(store)}),
        f"http://127.0.0.1:{port}",
        ready="/api/v1/health",
        ready_status=401,
    )
    try:
        yield server, token
    finally:
        server.stop()


def _put(server: Server, token: str) -> httpx.Response:
    sha = hashlib.sha256(BODY).hexdigest()
    return httpx.put(
        f"{server.base}/api/v1/artifacts/{sha}",
        content=BODY,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_a_full_artifact_store_answers_507_naming_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with server_over(full(store), tmp_path, store) as (server, token):
        answer = _put(server, token)
        assert answer.status_code == 507, answer.text
        assert answer.json()["error"] == "StorageError"
        detail = answer.json()["detail"]
        assert detail.startswith(f"the artifact store at {store} is full")
        assert "free some space there, or set MLSHIP_ARTIFACT_ROOT" in detail

        spec = fast_churn(tmp_path / "churn")
        client = {"MLSHIP_URL": server.base, "MLSHIP_TOKEN": token, "MLSHIP_PII_KEY": TEAM_PII_KEY}
        ran = invoke_cli("run", str(spec), home=tmp_path / "client", env=client, check=False)
        said = " ".join(ran.stderr.split())
        assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
        assert f"error: the server at {server.base} cannot store it: the artifact store" in said
        log = server.stop()
    assert f"the artifact store at {store} is full" in log  # the operator's log says it too


def test_a_read_only_artifact_store_answers_503_naming_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with server_over(read_only(store), tmp_path, store) as (server, token):
        answer = _put(server, token)
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"].startswith(f"the artifact store at {store} is read-only")
