"""A real ``mlship server`` on 127.0.0.1 backed by PostgreSQL, with a team of users and tokens."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import invoke_cli, mlship_env
from tests.serving import Server, free_port, start_server

TEAM = {"admin": "admin", "alice": "scientist", "sam": "scientist", "bob": "reviewer",
        "victor": "viewer"}  # fmt: skip
"""Who is on the test team, and their roles."""


TEAM_PII_KEY = "team-pseudonym-key-" + "0" * 32
"""The key every client of the team pseudonymizes PII with (clients never invent one)."""


@dataclass
class Team:
    server: Server
    url: str
    home: Path
    """The server's workspace (its keys, artifacts); the metadata is in PostgreSQL."""
    database_url: str
    tokens: dict[str, str]
    ca: Path | None = None
    """The certificate clients trust, when the server speaks HTTPS."""

    def env(self, user: str | None) -> dict[str, str]:
        """Client settings of ``user`` (None: no token at all)."""
        env = {"MLSHIP_URL": self.url, "MLSHIP_PII_KEY": TEAM_PII_KEY}
        if self.ca is not None:
            env["MLSHIP_CA_BUNDLE"] = str(self.ca)
        if user is not None:
            env["MLSHIP_TOKEN"] = self.tokens[user]
        return env

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def _secret(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("mls_"))


@contextmanager
def team_server(
    root: Path,
    database_url: str,
    *,
    tls: tuple[Path, Path] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Team]:
    """Bootstrap the first admin on the server's host, start the server (over HTTPS with
    ``tls``, a certificate and its key; with the settings ``env`` adds), and let the admin add
    the rest of :data:`TEAM`."""
    home = root / "server"
    # The server keeps its artifacts encrypted at rest; clients never see a key.
    server_env = {
        "MLSHIP_DATABASE_URL": database_url,
        "MLSHIP_USER": "ops",
        "MLSHIP_ENCRYPT_ARTIFACTS": "true",
        **(env or {}),
    }
    invoke_cli("users", "add", "admin", "--role", "admin", home=home, env=server_env)
    tokens = {
        "admin": _secret(invoke_cli("tokens", "create", "admin", home=home, env=server_env).stdout)
    }
    port = free_port()
    https = [] if tls is None else ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    scheme = "http" if tls is None else "https"
    server = start_server(
        [sys.executable, "-m", "mlship", "server", "--port", str(port), *https],
        mlship_env(home, server_env),
        f"{scheme}://127.0.0.1:{port}",
        ready="/api/v1/health",
        ready_status=401,  # up, and refusing a request without a token
        verify=True if tls is None else ssl.create_default_context(cafile=str(tls[0])),
    )
    process = server.process
    team = Team(server, server.base, home, database_url, tokens, None if tls is None else tls[0])
    client_home = root / "admin-client"
    try:
        for user, role in TEAM.items():
            if user == "admin":
                continue
            admin = team.env("admin")
            invoke_cli("users", "add", user, "--role", role, home=client_home, env=admin)
            created = invoke_cli("tokens", "create", user, home=client_home, env=admin)
            tokens[user] = _secret(created.stdout)
        yield team
    finally:
        if process.poll() is None:
            server.stop()
