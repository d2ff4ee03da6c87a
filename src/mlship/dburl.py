"""Database URLs that name several servers, in the form libpq and PostgreSQL's documentation use.

A replicated PostgreSQL is reached through a list of servers and ``target_session_attrs``: libpq
tries them in order and keeps the first that takes writes, so after a standby is promoted new
connections go to it with no change of settings. libpq writes the list in the URL's host part,
``postgresql://u@db1:5432,db2:5432/mlship?target_session_attrs=read-write``; SQLAlchemy cannot
read that (it takes ``5432,db2:5432`` for a port) and wants the hosts in the query instead,
``postgresql://u@/mlship?host=db1:5432&host=db2:5432&...``, which its PostgreSQL drivers hand
to libpq as one list. :func:`sqlalchemy_url` turns the first form into the second, so a setting
can be written the way the database's own tools write it, and says what is wrong with a list it
cannot use. This module is pure text: settings use it before any database code is imported.
"""

from __future__ import annotations

import re

_URL = re.compile(
    r"^(?P<scheme>[\w+]+)://(?:(?P<userinfo>[^@/?]*(?::[^@]*)?)@)?(?P<hosts>[^/?]*)(?P<rest>[/?].*)?$",
    re.DOTALL,
)
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def sqlalchemy_url(url: str) -> str:
    """``url`` with a host list (``h1:p1,h2:p2``) moved into the query as SQLAlchemy reads it;
    any other URL unchanged. A list that cannot work raises ``ValueError`` saying which host.

    >>> sqlalchemy_url("postgresql+psycopg://u@db1:5432,db2:5433/m?target_session_attrs=read-write")
    'postgresql+psycopg://u@/m?host=db1:5432&host=db2:5433&target_session_attrs=read-write'
    >>> sqlalchemy_url("sqlite:////tmp/ws/mlship.db")
    'sqlite:////tmp/ws/mlship.db'
    """
    found = _URL.match(url)
    if found is None or "," not in found["hosts"]:
        return url
    listed = found["hosts"]
    hosts = [_host(part, n, listed) for n, part in enumerate(listed.split(","), start=1)]
    rest = found["rest"] or ""
    database, _, query = rest.removeprefix("/").partition("?")
    params = [param for param in query.split("&") if param]
    if any(param.split("=", 1)[0] in ("host", "port") for param in params):
        raise ValueError(
            f"the URL lists its servers twice: in its host part ({found['hosts']}) and as "
            "host= or port= in its query; keep one of them"
        )
    userinfo = f"{found['userinfo']}@" if found["userinfo"] is not None else ""
    query = "&".join([*(f"host={host}" for host in hosts), *params])
    return f"{found['scheme']}://{userinfo}/{database}?{query}"


def _host(part: str, number: int, hosts: str) -> str:
    """One entry of a host list, checked: a host name or address, and an optional port."""
    where = f"server {number} of {hosts!r}"
    if not part:
        raise ValueError(f"{where} is empty; expected HOST:PORT entries separated by commas")
    if part.startswith("["):
        raise ValueError(
            f"{where} is an IPv6 address, which a list of servers cannot carry; use a host name"
        )
    name, colon, port = part.partition(":")
    if not _HOST.match(name):
        raise ValueError(f"{where} has the host name {name!r}; expected letters, digits, . - _")
    if colon and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{where} has the port {port!r}; expected a number from 1 to 65535")
    return part
