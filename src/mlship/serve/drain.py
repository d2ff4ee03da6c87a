"""Draining on SIGTERM: a server that is being stopped says so before it stops answering.

Uvicorn's own graceful shutdown stops accepting connections and closes idle keep-alive ones the
moment SIGTERM arrives. A load balancer in front learns of it only when a request it sends on a
pooled connection is reset, or a connection is refused. So the model server takes SIGTERM
itself, for ``seconds`` (``--drain-seconds``), before handing it on to uvicorn:

1. readiness goes false at once (``/v2/health/ready`` answers 503, ``/health`` says
   ``ready: false``), so the load balancer's health check takes the replica out of rotation;
2. every request that still arrives, on a new or an already open connection, is answered as
   usual, with ``Connection: close``: the client is told to go elsewhere, never reset;
3. then the signal goes to uvicorn, which stops accepting, lets the requests in flight finish
   and shuts the app down (the prediction log writes what waits).

A second SIGTERM during the drain changes nothing (a signal sent to a whole process group
reaches the workers twice: once from the sender, once from the process that started them);
SIGINT (Ctrl+C) is left to uvicorn and stops at once. Each worker of ``--workers N`` drains by
itself: uvicorn's parent process hands SIGTERM on to every worker and waits for them.

Signals reach the main thread only, so the handler is installed by the app's startup when it
runs there (``mlship serve``, each uvicorn worker), and not when an app is served from another
thread (a test client): that app never drains.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from types import FrameType
from typing import Any

logger = logging.getLogger("mlship.serve")

DEFAULT_SECONDS = 5.0
"""Long enough for a load balancer checking every second or two to see two failed checks."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CLOSE = (b"connection", b"close")

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Drain:
    """The drain of one server process: whether it has begun, and the SIGTERM handler that
    begins it (see the module docstring); ``seconds`` 0 leaves SIGTERM to uvicorn."""

    def __init__(self, seconds: float = DEFAULT_SECONDS) -> None:
        self.seconds = seconds
        self.draining = False
        """True from SIGTERM on: not ready, every answer closes its connection."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: _Handler = None
        self._installed = False

    def start(self) -> None:
        """Take SIGTERM over from the server (called by the app's startup, in its event loop)."""
        if self.seconds <= 0 or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
            return  # whoever started the server chose that SIGTERM does nothing
        self._loop = asyncio.get_running_loop()
        self._previous = signal.signal(signal.SIGTERM, self._on_term)
        self._installed = True

    def stop(self) -> None:
        """Give SIGTERM back to whoever had it (the app's shutdown)."""
        if self._installed:
            self._installed = False
            signal.signal(signal.SIGTERM, self._previous)

    def _on_term(self, signum: int, _frame: FrameType | None) -> None:
        if self.draining or self._loop is None:
            return
        self.draining = True  # at once: the next readiness check already sees it
        self._loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        logger.info(
            "SIGTERM: not ready; answering for %g s more, each answer closing its connection",
            self.seconds,
            extra={"event": "draining"},
        )
        assert self._loop is not None
        self._loop.call_later(self.seconds, self._hand_on)

    def _hand_on(self) -> None:
        """The drain is over: SIGTERM goes to the server, which shuts down gracefully."""
        logger.info("drained; shutting down", extra={"event": "drained"})
        previous = self._previous
        self.stop()
        if callable(previous):
            previous(signal.SIGTERM, None)
        else:  # the default action (or none was set): end as SIGTERM would have
            signal.raise_signal(signal.SIGTERM)


class CloseWhileDraining:
    """Answers carry ``Connection: close`` while ``drain`` is on. A plain ASGI middleware,
    outermost, so that every answer has it (a 413 from the body limit too)."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.draining:
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        await self.app(scope, receive, send_closing)
