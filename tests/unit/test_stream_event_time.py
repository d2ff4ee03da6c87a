"""Reading an event's time: every accepted form, and a clear refusal of anything else."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.streams.event_time import EventTimeError, read_event_time

MOMENT = datetime(2027, 1, 15, 8, 30, 15, 250000, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "value",
    [
        "2027-01-15T08:30:15.25Z",
        "2027-01-15T09:30:15.250+01:00",
        "2027-01-15T03:30:15.25-05:00",
        "2027-01-15 08:30:15.25",
        "2027-01-15T08:30:15.250000",
        MOMENT,
        repr(MOMENT),
        f" {MOMENT} ",
        datetime(2027, 1, 15, 8, 30, 15, 250000),
        datetime(2027, 1, 15, 9, 30, 15, 250000, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_every_accepted_form_is_the_same_moment(value: object) -> None:
    assert read_event_time("ts", value) == MOMENT


def test_whole_epoch_seconds_as_a_number_or_as_text() -> None:
    assert read_event_time("ts", 1_800_000_000) == 1_800_000_000.0
    assert read_event_time("ts", "1800000000") == 1_800_000_000.0
    assert read_event_time("ts", "1.8e9") == 1_800_000_000.0
    # digits are epoch seconds, never a basic-format date
    assert read_event_time("ts", "20270115") == 20_270_115.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "ts: 'yesterday' is not a time; expected ISO 8601 or epoch seconds"),
        (None, "ts: missing; expected ISO 8601 or epoch seconds"),
        (True, "ts: True is not a time; expected ISO 8601 or epoch seconds"),
        (math.nan, "ts: nan is not a time; expected ISO 8601 or epoch seconds"),
        (math.inf, "ts: inf is not a time; expected ISO 8601 or epoch seconds"),
        ("1e999", "ts: '1e999' is not a time; expected ISO 8601 or epoch seconds"),
        (10**20, "ts: 100000000000000000000 is out of range (years 1 to 9999); expected"),
        (10**400, "ts: 1" + "0" * 56 + "... is out of range (years 1 to 9999); expected"),
        ([1, 2], "ts: [1, 2] is not a time; expected ISO 8601 or epoch seconds"),
        ("2027-13-01", "ts: '2027-13-01' is not a time"),
        ("", "ts: '' is not a time"),
    ],
)
def test_what_is_refused_and_how_it_is_said(value: object, message: str) -> None:
    with pytest.raises(EventTimeError) as caught:
        read_event_time("ts", value)
    assert str(caught.value).startswith(message)


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.from_regex(r"[0-9+\-.eE:TZ ]{0,30}", fullmatch=True),
    st.datetimes(),
    st.builds(str, st.datetimes()),
    st.lists(st.integers(), max_size=3),
    st.binary(max_size=8),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(ANYTHING)
def test_any_value_is_a_time_or_a_sentence_naming_the_field(value: object) -> None:
    message = ""
    try:
        seconds = read_event_time("ts", value)
    except EventTimeError as exc:
        message = str(exc)
    else:
        assert isinstance(seconds, float)
        assert math.isfinite(seconds)
        assert not isinstance(value, bool)
        return
    assert message.startswith("ts: ")
    assert "expected ISO 8601 or epoch seconds" in message


OFFSETS = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-900, 900))


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=OFFSETS)
)
def test_iso_text_reads_as_the_moment_it_names(moment: datetime) -> None:
    assert read_event_time("ts", moment.isoformat()) == moment.timestamp()
    utc = moment.astimezone(UTC)
    assert read_event_time("ts", utc.isoformat().replace("+00:00", "Z")) == moment.timestamp()
    assert read_event_time("ts", utc.replace(tzinfo=None).isoformat()) == moment.timestamp()
