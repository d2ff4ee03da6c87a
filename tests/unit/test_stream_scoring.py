"""Scoring a micro-batch of stream events with the churn model: routing by entity, typing text
values as a CSV's, dead letters that name the field, shadows logged and never published, and a
prediction log that counts a redelivered event once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.brokers.base import Event
from mlship.config import Settings
from mlship.monitor.health import health_summary
from mlship.monitor.predlog import Entry, Failure, PredictionLog, read_log
from mlship.monitor.traffic import read_request_log
from mlship.serve.live import LiveModels, RegistrySource, Table
from mlship.spec.deployment import Deployment
from mlship.streaming.scoring import score_batch
from mlship.workspace import Workspace
from tests.conftest import run_cli, two_churn_versions
from tests.serving import RECORD

APPENDED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _event(
    number: int,
    fields: dict[str, Any],
    *,
    text: bool = False,
    problem: str | None = None,
) -> Event:
    return Event(
        id=f"{1733500000000 + number}-0",
        position=number,
        appended_at=APPENDED + timedelta(seconds=number),
        fields=fields,
        text_values=text,
        problem=problem,
    )


def _as_text(record: dict[str, Any]) -> dict[str, str]:
    """A record as a Redis entry's flat fields hold it: every value text."""
    return {
        name: ("true" if value is True else "false" if value is False else str(value))
        for name, value in record.items()
    }


def _table(workspace: Workspace, routes: list[dict[str, Any]], shadows: list[str]) -> Table:
    deployment = Deployment.model_validate({"name": "s", "routes": routes, "shadows": shadows})
    return LiveModels(deployment, RegistrySource(workspace)).table


@dataclass(frozen=True)
class Found:
    """A feature result as the online features give it (values, late, problem)."""

    values: dict[str, Any] = field(default_factory=dict)
    late: bool = False
    problem: str | None = None
    replayed: bool = False


def test_good_events_are_scored_in_one_batch_and_logged_as_stream_rows(
    trained: Workspace,
) -> None:
    table = _table(trained, [{"model": "churn:1"}], [])
    events = [
        _event(i, {**RECORD, "customer_id": f"C{i}", "tenure_months": i, "ts": "2026-12-01"})
        for i in range(12)
    ]
    batch = score_batch(table, [*events, events[3]], entity="customer_id")  # one came twice
    assert batch.dead_letters == []
    assert [m.key for m in batch.outputs] == [e.id for e in events]
    first = batch.outputs[0].fields
    assert first["event_id"] == events[0].id and first["entity"] == "C0"
    assert (first["model"], first["version"]) == ("churn", 1)
    assert first["prediction"] in ("yes", "no")
    assert set(first["probabilities"]) == {"no", "yes"}
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-9
    assert first["appended_at"] == events[0].appended_at.isoformat()
    assert datetime.fromisoformat(first["scored_at"]) >= events[0].appended_at
    assert first["late"] is False
    entries = [item for item in batch.logged if isinstance(item, Entry)]
    assert [(e.request_id, e.role, e.version) for e in entries] == [
        (e.id, "stream", 1) for e in events
    ]
    # What the model read, not what the event carried (its time is not an input).
    assert "ts" not in entries[0].inputs[0] and entries[0].inputs[0]["tenure_months"] == 0
    assert [(w.role, w.rows) for w in batch.work] == [("stream", 12)]


def test_text_values_are_typed_as_the_signature_says_and_bad_ones_name_the_field(
    trained: Workspace,
) -> None:
    table = _table(trained, [{"model": "churn:1"}], [])
    good = _as_text({**RECORD, "monthly_charges": 12.5})
    events = [
        _event(1, good, text=True),
        _event(2, {**good, "monthly_charges": "abc"}, text=True),
        _event(3, {k: v for k, v in good.items() if k != "tenure_months"}, text=True),
        _event(4, {**good, "support_calls": "2.5", "paperless_billing": "maybe"}, text=True),
        _event(5, {**good, "age": ""}, text=True),  # empty: missing, and age may be missing
    ]
    batch = score_batch(table, events, entity="customer_id")
    assert [m.key for m in batch.outputs] == [events[0].id, events[4].id]
    logged = {e.request_id: e for e in batch.logged if isinstance(e, Entry)}
    assert logged[events[0].id].inputs[0]["monthly_charges"] == 12.5
    assert logged[events[0].id].inputs[0]["paperless_billing"] is True
    assert logged[events[4].id].inputs[0]["age"] is None
    reasons = {m.key: m.fields["reason"] for m in batch.dead_letters}
    assert reasons[events[1].id] == "monthly_charges: 'abc' is not a number"
    assert reasons[events[2].id] == "tenure_months: Field required"
    assert "support_calls: '2.5' is not an integer" in reasons[events[3].id]
    assert "paperless_billing: 'maybe' is not a boolean" in reasons[events[3].id]
    dead = next(m for m in batch.dead_letters if m.key == events[1].id)
    assert dead.fields["payload"] == events[1].fields  # the original, text as it came
    failures = {f.request_id: f for f in batch.logged if isinstance(f, Failure)}
    assert set(failures) == set(reasons)
    assert {(f.status, f.model, f.version) for f in failures.values()} == {(422, "churn", 1)}
    assert failures[events[1].id].error == reasons[events[1].id]


def test_json_values_are_checked_as_a_requests_are(trained: Workspace) -> None:
    table = _table(trained, [{"model": "churn:1"}], [])
    events = [
        _event(1, {**RECORD, "monthly_charges": "12.5"}),  # lax, as the server takes it
        _event(2, {**RECORD, "monthly_charges": "abc"}),
        _event(3, {**RECORD, "tenure_months": True}),
    ]
    batch = score_batch(table, events, entity=None)
    assert [m.key for m in batch.outputs] == [events[0].id]
    reasons = {m.key: m.fields["reason"] for m in batch.dead_letters}
    assert reasons[events[1].id].startswith("monthly_charges: Input should be a valid number")
    assert reasons[events[2].id] == "tenure_months: true and false are not numbers"


def test_a_payload_that_could_not_be_read_is_a_dead_letter(trained: Workspace) -> None:
    table = _table(trained, [{"model": "churn:1"}], [])
    events = [
        _event(1, {}, problem="the payload is not JSON: unexpected character at 0"),
        _event(2, RECORD),
    ]
    batch = score_batch(table, events, entity="customer_id")
    assert [m.key for m in batch.outputs] == [events[1].id]
    (dead,) = batch.dead_letters
    assert dead.key == events[0].id
    assert dead.fields["reason"] == "the payload is not JSON: unexpected character at 0"
    assert dead.fields["payload"] == {}
    (failure,) = [f for f in batch.logged if isinstance(f, Failure)]
    assert (failure.request_id, failure.status) == (events[0].id, 422)


def test_shadows_are_scored_and_logged_but_never_published(trained: Workspace) -> None:
    table = _table(trained, [{"model": "churn:1"}], ["churn:1"])
    events = [_event(i, {**RECORD, "tenure_months": i}) for i in range(5)]
    events.append(_event(9, {**RECORD, "age": "old"}))
    batch = score_batch(table, events, entity=None)
    assert len(batch.outputs) == 5 and len(batch.dead_letters) == 1
    roles = Counter(item.role for item in batch.logged if isinstance(item, Entry))
    assert roles == {"stream": 5, "shadow": 5}
    assert [(w.role, w.rows) for w in batch.work] == [("stream", 5), ("shadow", 5)]
    stream = {e.request_id: e.outputs for e in batch.logged if isinstance(e, Entry)}
    shadow = {
        e.request_id: e.outputs for e in batch.logged if isinstance(e, Entry) and e.role == "shadow"
    }
    assert set(shadow) == {e.id for e in events[:5]}
    assert shadow == {key: stream[key] for key in shadow}  # the same version, the same answers


def test_features_are_added_before_the_record_is_checked(trained: Workspace) -> None:
    table = _table(trained, [{"model": "churn:1"}], [])
    without = {k: v for k, v in RECORD.items() if k != "tenure_months"}
    events = [_event(i, without) for i in range(5)]
    found = [
        Found({"tenure_months": 3}),
        Found({"tenure_months": 0}, late=True),
        Found(problem="ts: 'yesterday' is not a time; expected ISO 8601 or epoch seconds"),
        Found({}),
        Found({"tenure_months": 1}, late=True, replayed=True),  # its lateness counted before
    ]
    batch = score_batch(table, events, entity=None, features=found)
    assert [m.key for m in batch.outputs] == [events[0].id, events[1].id, events[4].id]
    assert [m.fields["late"] for m in batch.outputs] == [False, True, True]
    assert batch.late == 1
    reasons = {m.key: m.fields["reason"] for m in batch.dead_letters}
    assert reasons == {
        events[2].id: "ts: 'yesterday' is not a time; expected ISO 8601 or epoch seconds",
        events[3].id: "tenure_months: Field required",
    }
    logged = {e.request_id: e.inputs[0] for e in batch.logged if isinstance(e, Entry)}
    assert logged[events[0].id]["tenure_months"] == 3
    with pytest.raises(ValueError, match="3 feature results for 5 events"):
        score_batch(table, events, entity=None, features=found[:3])


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = two_churn_versions(tmp_path_factory.mktemp("stream-canary"))
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    yield workspace
    workspace.close()


def test_a_canary_split_follows_its_weights_and_an_entity_keeps_its_route(
    two_versions: Workspace,
) -> None:
    routes = [{"model": "churn:1", "weight": 0.8}, {"model": "churn:2", "weight": 0.2}]
    table = _table(two_versions, routes, [])
    events = [_event(i, {**RECORD, "customer_id": f"C{i % 400}"}) for i in range(1200)]
    versions: dict[str, set[int]] = {}
    for start in range(0, len(events), 300):  # four batches: the same entity in each
        batch = score_batch(table, events[start : start + 300], entity="customer_id")
        assert len(batch.outputs) == 300
        assert sorted({w.version.version for w in batch.work}) == [1, 2]  # a predict each
        for message in batch.outputs:
            versions.setdefault(message.fields["entity"], set()).add(message.fields["version"])
    assert all(len(seen) == 1 for seen in versions.values())
    share = sum(1 for seen in versions.values() if seen == {2}) / len(versions)
    assert 0.15 <= share <= 0.25, share


def test_an_event_without_its_entity_keeps_its_route_when_delivered_again(
    two_versions: Workspace,
) -> None:
    routes = [{"model": "churn:1", "weight": 0.5}, {"model": "churn:2", "weight": 0.5}]
    table = _table(two_versions, routes, [])
    events = [_event(i, RECORD) for i in range(40)]
    first = score_batch(table, events, entity="customer_id")
    again = score_batch(table, list(reversed(events)), entity="customer_id")
    chosen = {m.key: m.fields["version"] for m in first.outputs}
    assert chosen == {m.key: m.fields["version"] for m in again.outputs}
    assert set(chosen.values()) == {1, 2}


FIELD_NAMES = [*RECORD, "customer_id", "ts", "other"]


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(FIELD_NAMES),
            st.one_of(st.text(max_size=12), st.sampled_from(["", "12.5", "yes", "n/a", "1e400"])),
            max_size=len(FIELD_NAMES),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_text_event_is_scored_or_dead_lettered_exactly_once(
    trained: Workspace, payloads: list[dict[str, str]]
) -> None:
    table = _table(trained, [{"model": "churn:1"}], [])
    events = [_event(i, {**_as_text(RECORD), **p}, text=True) for i, p in enumerate(payloads)]
    batch = score_batch(table, events, entity="customer_id")
    handled = [m.key for m in batch.outputs] + [m.key for m in batch.dead_letters]
    assert sorted(handled) == sorted(e.id for e in events)
    for message in batch.dead_letters:
        assert message.fields["reason"]
        names = [name for name in RECORD if message.fields["reason"].startswith(name + ":")]
        assert names, message.fields["reason"]  # a reason starts with the field it is about
    rows = [item.request_id for item in batch.logged]
    assert sorted(rows) == sorted(handled)


def test_a_redelivered_event_is_counted_once_by_the_readers(tmp_path: Path) -> None:
    """The first delivery's rows were written, then its consumer died before acknowledging;
    the second delivery (after a promotion: another version) writes them again."""
    log = PredictionLog(tmp_path, "churn-stream")
    record = [{"age": 40}]
    first: list[Entry | Failure] = [
        Entry("1-0", "churn", 1, "stream", 2.0, record, [{"prediction": "no"}]),
        Entry("1-0", "churn", 1, "shadow", 2.0, record, [{"prediction": "no"}]),
        Entry("2-0", "churn", 1, "stream", 2.0, record, [{"prediction": "no"}]),
        Failure("3-0", "churn", 1, 0.0, 422, "age: 'x' is not an integer"),
    ]
    assert log.write(first) == 4
    again: list[Entry | Failure] = [
        Entry("1-0", "churn", 2, "stream", 2.0, record, [{"prediction": "yes"}]),
        Entry("1-0", "churn", 1, "shadow", 2.0, record, [{"prediction": "no"}]),
        Failure("3-0", "churn", 1, 0.0, 422, "age: 'x' is not an integer"),
    ]
    assert log.write(again) == 3
    # Another stream's events have ids of their own numbering: not the same events.
    other = PredictionLog(tmp_path, "other-stream")
    other.write([Entry("1-0", "churn", 2, "stream", 2.0, record, [{"prediction": "no"}])])
    assert len(list(tmp_path.glob("part-*.parquet"))) == 3
    rows = read_log(tmp_path).to_pylist()
    kept = sorted((r["deployment"], r["request_id"], r["role"], r["version"]) for r in rows)
    assert kept == [
        ("churn-stream", "1-0", "shadow", 1),
        ("churn-stream", "1-0", "stream", 1),  # the first: its prediction was published
        ("churn-stream", "2-0", "stream", 1),
        ("churn-stream", "3-0", "error", 1),
        ("other-stream", "1-0", "stream", 2),
    ]
    health = read_request_log(tmp_path.parent, "churn", parts=sorted(tmp_path.glob("*.parquet")))
    assert health.height == 5
    summary = health_summary(health, "churn", timedelta(hours=1))
    assert summary["health.requests"] == 4 and summary["health.errors"] == 1


def test_a_promotion_reaches_the_next_batch(two_versions: Workspace) -> None:
    """A runner's table is its live models': a refresh after a promotion swaps it, and the next
    batch is scored by the promoted version (the runner refreshes every ``refresh_seconds``)."""
    home = two_versions.settings.home_resolved
    promote = ("models", "promote", "churn:1", "--to", "production")
    run_cli(*promote, home=home, env={"MLSHIP_USER": "a"})
    run_cli("models", "approve", "churn:1", home=home, env={"MLSHIP_USER": "b"})
    deployment = Deployment.model_validate({"name": "s", "routes": [{"model": "churn@production"}]})
    live = LiveModels(deployment, RegistrySource(two_versions))
    events = [_event(i, RECORD) for i in range(3)]
    before = score_batch(live.table, events, entity=None)
    assert {m.fields["version"] for m in before.outputs} == {1}
    run_cli(
        "models", "promote", "churn:2", "--to", "production", home=home, env={"MLSHIP_USER": "a"}
    )
    run_cli("models", "approve", "churn:2", home=home, env={"MLSHIP_USER": "b"})
    assert live.refresh() == ["churn:1 -> churn:2"]
    after = score_batch(live.table, events, entity=None)
    assert {m.fields["version"] for m in after.outputs} == {2}
