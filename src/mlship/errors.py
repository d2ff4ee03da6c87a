"""Errors that users see.

Every error mlship raises on purpose derives from :class:`MlshipError`; the CLI prints its message
without a traceback, so the message must say where the problem is (file, line, row, column, field)
and what was expected.
"""


class MlshipError(Exception):
    """Base class of the errors a user can fix."""


class SpecError(MlshipError):
    """The pipeline spec is malformed or inconsistent."""


class DataError(MlshipError):
    """Input data does not match the declared schema or signature."""


class IntegrityError(MlshipError):
    """A stored artifact does not match its recorded checksum."""


class DecryptionError(IntegrityError):
    """An encrypted artifact cannot be read: its key is not in the keyring, or it fails
    authentication (altered, truncated or reordered)."""


class NotFoundError(MlshipError):
    """A run, model or version that was asked for does not exist."""


class ConfigError(MlshipError):
    """Settings could not be read."""


class StorageError(MlshipError):
    """A store cannot be written or read: read-only, full, over quota, refused or failing. The
    message names the store, the path and what to do; ``code`` is the ``errno`` behind it, so a
    server can answer 507 for a full store and 503 for one that refuses."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class BrokerError(MlshipError):
    """A message broker cannot be used: an address mlship does not read, a server it cannot
    reach, credentials it refuses, a feature it lacks (JetStream off). The message names the
    broker by its address without credentials."""
