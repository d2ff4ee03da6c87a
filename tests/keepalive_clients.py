"""Clients that keep their connections alive while a server is stopped, recording every request.

Each :class:`Client` sends predictions in a loop on one ``http.client`` connection, reused for as
long as the server keeps it open (a load balancer's pooled connection behaves the same), and
records for each request whether it went out on a new connection or a reused one, when it
started, and what came back: an answer (its status and whether it said ``Connection: close``) or
a failure (a reset, an empty reply, a refused connection). A :class:`ReadinessProbe` asks the
ready endpoint on a new connection every few tens of milliseconds, as a load balancer's health
check does. Both stop when the server no longer accepts connections; a client also stops when
it would need a new connection after :attr:`Client.no_new` is set (a load balancer whose health
check has taken the server out of rotation opens none to it, and sends it nothing new).
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from tests.serving import RECORD


@dataclass(frozen=True)
class Sent:
    """One request and what came of it."""

    request_id: str
    started: float
    """``time.monotonic()`` when it was sent."""
    reused: bool
    """Sent on a connection that had already carried an answer."""
    status: int | None
    """The answer's status, None when the request failed."""
    close: bool = False
    """The answer said ``Connection: close``."""
    error: str = ""


@dataclass
class Client:
    """One keep-alive client (see the module docstring)."""

    base: str
    path: str = "/predict"
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    no_new: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Client:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "a client still runs"

    def _loop(self) -> None:
        address = urlsplit(self.base)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        body = orjson.dumps({"records": [RECORD]})
        while not self.stop.is_set():
            reused = connection.sock is not None
            if not reused and self.no_new.is_set():
                return
            request_id = uuid.uuid4().hex
            started = time.monotonic()
            try:
                connection.request(
                    "POST",
                    self.path,
                    body,
                    {"Content-Type": "application/json", "X-Request-Id": request_id},
                )
                response = connection.getresponse()
                response.read()
            except ConnectionRefusedError as exc:
                self.sent.append(Sent(request_id, started, reused, None, error=repr(exc)))
                return  # the server no longer accepts connections
            except (OSError, http.client.HTTPException) as exc:
                self.sent.append(Sent(request_id, started, reused, None, error=repr(exc)))
                connection.close()
                continue
            close = (response.getheader("connection") or "").lower() == "close"
            self.sent.append(Sent(request_id, started, reused, response.status, close))
            if response.will_close:
                connection.close()  # the next request opens a new connection


@dataclass
class ReadinessProbe:
    """Asks ``/v2/health/ready`` on a new connection every ``every`` seconds: (time, status)."""

    base: str
    every: float = 0.05
    seen: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> ReadinessProbe:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)

    def _loop(self) -> None:
        address = urlsplit(self.base)
        while not self.stop.is_set():
            connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
            try:
                connection.request("GET", "/v2/health/ready")
                response = connection.getresponse()
                response.read()
                self.seen.append((time.monotonic(), response.status))
            except ConnectionRefusedError:
                return
            except (OSError, http.client.HTTPException):
                pass  # the listener closing under a check: the next one is refused
            finally:
                connection.close()
            time.sleep(self.every)

    def first_not_ready(self) -> float | None:
        """When a check first said not ready (503)."""
        return next((at for at, status in self.seen if status == 503), None)
