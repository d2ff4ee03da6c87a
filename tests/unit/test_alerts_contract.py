"""The alert history behaves the same on every backend: SQLite, PostgreSQL, and a server on each.

What a monitor relies on for its cool-downs: ``last_delivered`` counts only fired alerts that
reached someone, ``list`` is newest first with filters and a limit, times come back aware UTC
whatever zone they were given in. Recording takes a scientist on a server (a viewer reads);
a local store has no roles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlship.errors import MlshipError
from mlship.store import entities
from mlship.store.alert_history import AlertHistory, AlertStatus
from tests.backends import Backend, unique
from tests.contract import People, is_utc

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OK = {"channel": "webhook", "ok": True, "detail": "HTTP 200"}
FAILED = {"channel": "webhook", "ok": False, "detail": "HTTP 500"}


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


def _record(
    history: AlertHistory,
    model: str,
    at: datetime,
    status: AlertStatus = "fired",
    deliveries: tuple[dict[str, object], ...] = (OK,),
    rule: str = "drift",
) -> entities.Alert:
    return history.record(
        model=model,
        rule=rule,
        metric="psi",
        value=0.31,
        condition="psi > 0.2",
        severity="warning",
        window="1h",
        status=status,
        deliveries=deliveries,
        details={"feature": "age"},
        at=at,
    )


def test_record_gives_the_alert_with_its_delivery_judged(people: People) -> None:
    model = unique("churn")
    history = people.alice.alert_history
    fired = _record(history, model, T0)
    assert isinstance(fired, entities.Alert)
    assert (fired.model, fired.rule, fired.status, fired.delivered) == (
        model,
        "drift",
        "fired",
        True,
    )
    assert (fired.value, fired.details, fired.deliveries) == (0.31, {"feature": "age"}, [OK])
    assert fired.at == T0 and is_utc(fired.at)
    assert not _record(history, model, T0, deliveries=(FAILED,)).delivered
    assert not _record(history, model, T0, status="suppressed").delivered
    now = _record(people.alice.alert_history, model, datetime.now(UTC))
    assert is_utc(now.at)


def test_a_time_in_another_zone_is_kept_as_the_same_instant(people: People) -> None:
    model = unique("churn")
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    kept = _record(people.alice.alert_history, model, paris)
    assert kept.at == T0 and kept.at.utcoffset() == timedelta(0)
    [listed] = people.vera.alert_history.list(model=model)
    assert listed == kept


def test_last_delivered_counts_only_fired_alerts_that_reached_someone(people: People) -> None:
    model = unique("churn")
    history = people.alice.alert_history
    assert history.last_delivered(model, "drift") is None
    _record(history, model, T0)
    _record(history, model, T0 + timedelta(minutes=5), deliveries=(FAILED,))
    _record(history, model, T0 + timedelta(minutes=6), status="suppressed")
    _record(history, model, T0 + timedelta(minutes=7), rule="latency")
    found = people.vera.alert_history.last_delivered(model, "drift")
    assert found == T0 and is_utc(found)
    assert people.vera.alert_history.last_delivered(model, "latency") == T0 + timedelta(minutes=7)
    assert people.vera.alert_history.last_delivered(unique("other"), "drift") is None


def test_list_is_newest_first_filtered_and_limited(people: People) -> None:
    model, other = unique("churn"), unique("fraud")
    history = people.alice.alert_history
    made = [_record(history, model, T0 + timedelta(minutes=m)) for m in (3, 1, 2)]
    _record(history, other, T0 + timedelta(minutes=9))
    listed = people.vera.alert_history.list(model=model)
    assert [a.at for a in listed] == [T0 + timedelta(minutes=m) for m in (3, 2, 1)]
    assert {a.id for a in listed} == {a.id for a in made}
    assert all(is_utc(a.at) for a in listed)
    assert [a.at for a in people.vera.alert_history.list(model=model, limit=1)] == [made[0].at]
    since = T0 + timedelta(minutes=2)
    assert len(people.vera.alert_history.list(model=model, since=since)) == 2  # inclusive
    assert people.vera.alert_history.list(model=unique("none")) == []
    both = {a.model for a in people.vera.alert_history.list(since=T0, limit=10_000)}
    assert {model, other} <= both


def test_a_viewer_may_not_record_on_a_server_while_a_local_store_has_no_roles(
    people: People, backend: Backend
) -> None:
    model = unique("churn")
    if backend.remote:
        with pytest.raises(MlshipError, match="vera is a viewer; this needs the scientist role"):
            _record(people.vera.alert_history, model, T0)
        assert people.vera.alert_history.list(model=model) == []
    else:
        assert _record(people.vera.alert_history, model, T0).model == model


def test_what_the_table_cannot_hold_is_refused_alike(people: People) -> None:
    model = unique("churn")
    history = people.alice.alert_history
    with pytest.raises(MlshipError, match=r"^alert rule 'rrrr.*\.\.\.: at most 200 characters$"):
        _record(history, model, T0, rule="r" * 201)
    with pytest.raises(MlshipError, match=r"^alert rule 'a\\x00b': contains a NUL character$"):
        _record(history, model, T0, rule="a\x00b")
    with pytest.raises(MlshipError, match=r"^alert status 'sent': expected fired or suppressed$"):
        _record(history, model, T0, status="sent")  # type: ignore[arg-type]
    assert people.vera.alert_history.list(model=model) == []
    assert _record(history, model, T0, rule="r" * 200).rule == "r" * 200
