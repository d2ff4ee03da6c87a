"""What the operating system said when a broker could not be reached.

Both clients wrap the socket's error (``Connection refused``) in exceptions of their own, whose
text is often empty or about the client; the message a user needs is the system's.
"""

from __future__ import annotations

import os


def system_reason(exc: BaseException) -> str | None:
    """The system's words for the first error with an errno among ``exc``'s causes, if any."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return None
