"""Passwords out of every message: a source's URL may carry one, and so may a driver's error."""

from __future__ import annotations

import re
from urllib.parse import quote

from sqlalchemy.engine import URL

MASK = "***"
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^@/]*@")


def mask_text(text: str) -> str:
    """Hide the password of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)


def secrets_of(url: URL) -> list[str]:
    """The password of ``url`` as written and URL-quoted, longest first, for :func:`mask`.

    A driver may quote the password on its own, outside any URL, so the URL pattern alone
    would miss it.
    """
    password = url.password
    if not password:
        return []
    return sorted({str(password), quote(str(password), safe="")}, key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every one of ``secrets`` and any URL password hidden."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return mask_text(text)
