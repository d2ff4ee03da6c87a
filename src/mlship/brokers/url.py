"""A broker from its URL, as a stream spec's ``source.url`` names it.

``redis://`` and ``rediss://`` (TLS) open a Redis server's streams, ``nats://`` and ``tls://`` a
NATS server's JetStream. Credentials may be in the URL (``redis://:PASSWORD@host:6379/0``,
``nats://user:PASSWORD@host:4222``); they are used to connect and never shown: the broker's
``url``, every message and every exception carry the URL without them. Connecting is checked at
once (a ``PING``, JetStream's account information), with a short timeout, so a wrong address or
password is an error when a consumer starts rather than its first silent minute.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mlship.brokers.base import Broker
from mlship.errors import BrokerError

SCHEMES = {"redis": "redis", "rediss": "redis", "nats": "nats", "tls": "nats"}
CONNECT_TIMEOUT_S = 3.0


def shown(url: str) -> str:
    """``url`` without its user name, password and query (which may hold a token)."""
    scheme, found, _ = url.partition("://")
    if not found:
        return shown(f"none://{url}").removeprefix("none://")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return f"{scheme}://(an address that cannot be read)"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path}"


def open_broker(url: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Broker:
    """The broker at ``url``, connected; a :class:`BrokerError` saying why not otherwise."""
    safe = shown(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    kind = SCHEMES.get(scheme)
    if kind is None:
        raise BrokerError(
            f"stream source: {safe!r} is not a broker mlship reads; "
            "expected redis://, rediss://, nats:// or tls://"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise BrokerError(
            f"stream source: {safe!r} cannot be read as a URL; expected {scheme}://HOST:PORT"
        ) from None
    if not parts.hostname:
        raise BrokerError(f"stream source: {safe!r} names no host; expected {scheme}://HOST:PORT")
    # Imported here: a Redis user needs no NATS client loaded, and the reverse.
    if kind == "redis":
        from mlship.brokers.redis_streams import RedisBroker

        return RedisBroker.connect(url, safe, timeout_s=timeout_s)
    from mlship.brokers.nats_jetstream import NatsBroker

    return NatsBroker.connect(url, safe, timeout_s=timeout_s)
