"""Refusing request bodies over a size (413) before an HTTP route reads them whole.

Shared by the tracking server and the model server: both parse JSON bodies in memory, so an
unbounded body is memory any client can make them spend. A declared ``Content-Length`` over the
limit is refused at once; a body without one (chunked) is counted as it streams and refused when
it passes the limit, before the rest is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024

Refusal = Callable[[int, str], dict[str, Any]]
"""The JSON body of the 413, given the limit in bytes and the request's path (each server, and
each protocol of the model server, answers in its own shape)."""


def _default_refusal(limit: int, _path: str) -> dict[str, Any]:
    return {"error": "BodyTooLarge", "detail": f"request body over {limit} bytes"}


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, except under ``exempt_prefix``
    (routes that check a larger limit of their own while they spool to disk)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        exempt_prefix: str | None = None,
        refusal: Refusal = _default_refusal,
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt_prefix = exempt_prefix
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exempt = self.exempt_prefix is not None and scope.get("path", "").startswith(
            self.exempt_prefix
        )
        if scope["type"] != "http" or exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, scope)
            return
        seen = 0
        started = refused = False

        async def counting() -> Message:
            # Over the limit, the answer is sent here and the route is told the client left:
            # raising instead would reach the route's body parser, which answers 400.
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True
                    if not started:
                        await self._refuse(send, scope)
                    return {"type": "http.disconnect"}
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except Exception:
            if not refused:  # a route failing on the cut-off body is expected; others are not
                raise

    async def _refuse(self, send: Send, scope: Scope) -> None:
        body = orjson.dumps(self.refusal(self.limit, scope.get("path", "")))
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
