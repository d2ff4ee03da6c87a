"""The HTTP client retries what may not have been answered, with one idempotency key per call.

The server here is a real HTTP server on 127.0.0.1 that answers what each test scripts (a proxy
whose backend is gone answers 502/503/504 the same way), and records what it received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlship.errors import MlshipError, NotFoundError, StorageError
from mlship.remote.client import Client, RetryPolicy
from tests.serving import free_port

QUICK = RetryPolicy(attempts=3, seconds=30, first_wait=0.01, longest_wait=0.02)


@dataclass
class Scripted:
    """Answers ``statuses`` in turn (then 200), with a JSON body, and keeps what came in."""

    statuses: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)
    detail: dict[str, str] = field(default_factory=lambda: {"detail": "scripted"})

    def answer(self) -> tuple[int, dict[str, Any]]:
        if self.statuses:
            return self.statuses.pop(0), self.detail
        return 200, {"ok": True}


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    script = Scripted([])

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Transfer-Encoding") == "chunked":
                body = _chunked(self.rfile)
            script.received.append(
                {"method": self.command, "path": self.path, "body": body,
                 "key": self.headers.get("Idempotency-Key")}
            )  # fmt: skip
            status, answer = script.answer()
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _chunked(stream: Any) -> bytes:
    body = b""
    while True:
        size = int(stream.readline().strip(), 16)
        if size == 0:
            stream.readline()
            return body
        body += stream.read(size)
        stream.readline()


def test_a_write_is_retried_on_gateway_errors_with_one_key(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.statuses = [503, 502]
    client = Client(url, "mls_t", retry=QUICK)
    assert client.post("/runs", {"pipeline": "p"}) == {"ok": True}
    assert [r["method"] for r in script.received] == ["POST"] * 3
    keys = {r["key"] for r in script.received}
    assert len(keys) == 1 and None not in keys, "one key, sent again with each retry"
    assert len({r["body"] for r in script.received}) == 1
    assert (client.sent, client.retried) == (3, 2)
    client.post("/runs", {"pipeline": "p"})
    assert script.received[-1]["key"] not in keys, "another call, another key"


def test_reads_are_retried_and_carry_no_key(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.statuses = [504]
    assert Client(url, "mls_t", retry=QUICK).get("/runs", limit=3) == {"ok": True}
    assert [(r["method"], r["key"]) for r in script.received] == [("GET", None)] * 2


def test_an_upload_is_sent_whole_again(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.statuses = [503]
    Client(url, "mls_t", retry=QUICK).put_stream("/artifacts/x", lambda: iter([b"ab", b"cd"]))
    assert [r["body"] for r in script.received] == [b"abcd", b"abcd"]


@pytest.mark.parametrize("status", [400, 404, 409, 422, 429, 500, 507])
def test_answers_that_are_final_are_not_retried(
    scripted: tuple[Scripted, str], status: int
) -> None:
    script, url = scripted
    script.statuses = [status]
    with pytest.raises(MlshipError):
        Client(url, "mls_t", retry=QUICK).post("/runs", {})
    assert len(script.received) == 1


def test_after_the_last_try_the_error_says_what_failed_and_how_often(
    scripted: tuple[Scripted, str],
) -> None:
    script, url = scripted
    script.statuses = [503] * 3
    script.detail = {"error": "StorageError", "detail": "the artifact store is unavailable"}
    with pytest.raises(StorageError) as caught:
        Client(url, "mls_t", retry=QUICK).post("/runs", {})
    message = str(caught.value)
    assert "the artifact store is unavailable" in message
    assert "POST /runs tried 3 times over" in message
    script.statuses = [503, 404]
    script.detail = {"error": "NotFoundError", "detail": "no run"}
    with pytest.raises(NotFoundError, match="no run"):  # the final answer keeps its kind
        Client(url, "mls_t", retry=QUICK).get("/runs/x")


def test_a_server_that_never_answers_is_named_with_the_tries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(url, "mls_t", retry=QUICK)
    with pytest.raises(MlshipError) as caught:
        client.post("/runs", {})
    message = str(caught.value)
    assert message.startswith(f"cannot reach the mlship server at {url}: POST /runs failed 3 ")
    assert "the last error: ConnectError" in message
    assert client.sent == 3


def test_the_retry_budget_bounds_the_tries() -> None:
    """Within the seconds given, fewer tries than allowed: a budget smaller than the first
    wait stops after the first failure."""
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(url, "mls_t", retry=RetryPolicy(attempts=50, seconds=0.001, first_wait=1))
    with pytest.raises(MlshipError, match="failed once"):
        client.get("/runs")
    assert client.sent == 1
