"""Reading an event's time from its field: ISO 8601 text or epoch seconds, as epoch seconds.

Windows, watermarks and lateness are arithmetic on one number, so every accepted form becomes
epoch seconds (a float) here, once, and the rest of the feature code never sees text or
datetimes. An event whose time cannot be read is refused with a sentence naming the field and the
value (``ts: 'yesterday' is not a time; expected ISO 8601 or epoch seconds``); the runner sends it
to the dead-letter stream with that reason.

Accepted:

- ISO 8601 text with ``Z`` or an offset (``2026-12-07T03:00:00Z``, ``...+01:00``); naive text
  (``2026-12-07 03:00:00``) is taken as UTC;
- epoch seconds as a number (int or float), or as text of decimal digits (a Redis stream entry's
  fields are all text): ``1733540400``, ``1733540400.25``. Digits are always epoch seconds, so
  ``20261207`` is a time in 1970, not a date (write ``2026-12-07``);
- a ``datetime`` (an offline table's timestamp column); naive ones are UTC.

Refused: booleans (``true`` is not a time), NaN and infinities, and times outside the years 1 to
9999 (the range ISO 8601 text can express), so any accepted number is also a real date.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import UTC, datetime

from mlship.errors import DataError

EXPECTED = "expected ISO 8601 or epoch seconds"
_EPOCH_TEXT = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 31, tzinfo=UTC).timestamp()
_SHOWN = 60
_RANGE = " (years 1 to 9999)"


class EventTimeError(DataError):
    """An event's time field is missing or cannot be read as a time."""


def shown(value: object) -> str:
    """A value as a message quotes it: repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def read_event_time(field: str, value: object) -> float:
    """Epoch seconds of ``value``, the event's ``field``; :class:`EventTimeError` otherwise."""
    if value is None:
        raise EventTimeError(f"{field}: missing; {EXPECTED}")
    if isinstance(value, bool):
        raise EventTimeError(f"{field}: {shown(value)} is not a time; {EXPECTED}")
    if isinstance(value, datetime):
        return _in_range(field, value, _timestamp(field, value))
    if isinstance(value, numbers.Real):
        try:
            seconds = float(value)
        except (OverflowError, ValueError, TypeError):
            raise EventTimeError(
                f"{field}: {shown(value)} is out of range{_RANGE}; {EXPECTED}"
            ) from None
        return _in_range(field, value, seconds)
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_TEXT.match(text):
            return _in_range(field, value, float(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise EventTimeError(f"{field}: {shown(value)} is not a time; {EXPECTED}") from None
        return _in_range(field, value, _timestamp(field, parsed))
    raise EventTimeError(f"{field}: {shown(value)} is not a time; {EXPECTED}")


def _timestamp(field: str, moment: datetime) -> float:
    try:
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return aware.timestamp()
    except (OverflowError, ValueError):
        raise EventTimeError(
            f"{field}: {shown(moment)} is out of range{_RANGE}; {EXPECTED}"
        ) from None


def _in_range(field: str, value: object, seconds: float) -> float:
    if not math.isfinite(seconds):
        raise EventTimeError(f"{field}: {shown(value)} is not a time; {EXPECTED}")
    if not _EARLIEST <= seconds <= _LATEST:
        raise EventTimeError(f"{field}: {shown(value)} is out of range{_RANGE}; {EXPECTED}")
    return seconds
