"""HTTPS for the servers mlship starts: the certificate and key checked before anything listens.

uvicorn reads the files only once it starts, and a missing, unreadable or mismatched file then
surfaces as an ``ssl`` traceback after the model was loaded. Checking here first turns each into an
error that names the file and the option that gave it, and keeps the TLS plumbing in one place
for every command that serves HTTP.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TypedDict

from mlship.errors import ConfigError


class UvicornTls(TypedDict, total=False):
    """The arguments of ``uvicorn.run`` that turn HTTPS on (none: plain HTTP)."""

    ssl_certfile: str
    ssl_keyfile: str


def _no_passphrase() -> bytes:
    # Without a callback, OpenSSL would ask for a passphrase on the terminal of a server.
    return b""


def _check_readable(path: Path, option: str) -> None:
    if not path.exists():
        raise ConfigError(f"{option} {path}: no such file")
    if not path.is_file():
        raise ConfigError(f"{option} {path}: not a file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot be read ({exc.strerror or exc})") from None


def uvicorn_tls(
    cert: Path | None,
    key: Path | None,
    *,
    cert_option: str = "--tls-cert",
    key_option: str = "--tls-key",
) -> UvicornTls:
    """The keyword arguments that make ``uvicorn.run`` serve HTTPS with ``cert`` (a PEM
    certificate, chain included) and ``key`` (its PEM private key, without a passphrase); empty
    when neither is given (plain HTTP).

    >>> uvicorn_tls(None, None)
    {}
    """
    if cert is None and key is None:
        return UvicornTls()
    if cert is None or key is None:
        given, missing = (
            (cert_option, key_option) if cert is not None else (key_option, cert_option)
        )
        raise ConfigError(f"{given} needs {missing}: HTTPS takes a certificate and its key")
    _check_readable(cert, cert_option)
    _check_readable(key, key_option)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{cert_option} {cert} and {key_option} {key} cannot be used together: "
            f"{exc.reason or exc} (expected PEM files: a certificate and the private key that "
            "matches it, not protected by a passphrase)"
        ) from None
    return UvicornTls(ssl_certfile=str(cert), ssl_keyfile=str(key))
