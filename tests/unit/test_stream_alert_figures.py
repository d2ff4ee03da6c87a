"""The ``stream.*`` figures alert rules read from a stream's prediction log, written the way the
runner writes it (``score_batch`` then ``PredictionLog.write``): events counted once, dead letters
and their rate, redeliveries, late events and end-to-end latency; and the rules file's
``stream:`` key, resolved next to the file and refused where it does not belong."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.brokers.base import Event
from mlship.monitor.predlog import PredictionLog, read_log
from mlship.monitor.rules import RulesError, parse_rules
from mlship.monitor.stream_figures import stream_figures
from mlship.monitor.stream_rules import read_stream_log
from mlship.monitor.window import Window
from mlship.serve.live import LiveModels, RegistrySource
from mlship.spec.deployment import Deployment
from mlship.store.logstore import LogTarget
from mlship.streaming.scoring import score_batch
from mlship.workspace import Workspace
from tests.serving import RECORD

APPENDED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Found:
    """A feature result as the online features give it."""

    values: dict[str, Any] = field(default_factory=dict)
    late: bool = False
    problem: str | None = None
    replayed: bool = False


def _event(number: int, fields: dict[str, Any], deliveries: int = 1) -> Event:
    return Event(
        id=f"{1733500000000 + number}-0",
        position=number,
        appended_at=APPENDED + timedelta(seconds=number),
        fields=fields,
        deliveries=deliveries,
    )


def _logged(trained: Workspace, folder: Path) -> tuple[LogTarget, list[Event]]:
    """Ten events scored into a log as the runner does: 7 scored (2 of them late), 3 dead
    letters; then 4 of them (2 scored, 2 dead) delivered again and logged a second time."""
    deployment = Deployment.model_validate({"name": "s", "routes": [{"model": "churn:1"}]})
    table = LiveModels(deployment, RegistrySource(trained)).table
    events = [_event(i, {**RECORD, "tenure_months": i}) for i in range(7)]
    events += [_event(7 + i, {**RECORD, "monthly_charges": "abc"}) for i in range(3)]
    found = [Found(late=i in (2, 5)) for i in range(10)]
    target = LogTarget.of(folder)
    log = PredictionLog(target, "churn-stream")
    log.write(score_batch(table, events, entity=None, features=found).logged)
    again = [events[0], events[1], events[7], events[8]]
    again = [_event(e.position, dict(e.fields), deliveries=2) for e in again]
    log.write(
        score_batch(table, again, entity=None, features=[found[e.position] for e in again]).logged
    )
    other = PredictionLog(target, "another-deployment")  # a deployment sharing the folder
    other.write(score_batch(table, events[:3], entity=None).logged)
    return target, events


def test_the_figures_count_each_event_once_from_the_runners_log(
    trained: Workspace, tmp_path: Path
) -> None:
    target, events = _logged(trained, tmp_path / "log")
    log = read_stream_log(target, "churn-stream")
    now = datetime.now(UTC) + timedelta(seconds=1)
    figures = stream_figures(log, Window(seconds=3600), now)
    assert figures.events == 10
    assert figures.dead_letters == 3
    assert figures.redeliveries == 4
    assert figures.late == 2
    metrics = figures.metrics()
    assert metrics["stream.dead_letter_rate"] == pytest.approx(0.3)
    # From the broker's append to the first logging, for the 7 scored events.
    raw = pl.from_arrow(read_log(tmp_path / "log"))
    assert isinstance(raw, pl.DataFrame)
    mine = (pl.col("role") == "stream") & (pl.col("deployment") == "churn-stream")
    first = raw.filter(mine).group_by("request_id").agg(pl.col("at").min())
    at = dict(zip(first["request_id"], first["at"], strict=True))
    waited = [(at[e.id] - e.appended_at).total_seconds() * 1000 for e in events[:7]]
    assert metrics["stream.latency_p50_ms"] == pytest.approx(np.percentile(waited, 50))
    assert metrics["stream.latency_p99_ms"] == pytest.approx(np.percentile(waited, 99))


def test_windows_of_rows_and_of_time(trained: Workspace, tmp_path: Path) -> None:
    target, _events = _logged(trained, tmp_path / "log")
    log = read_stream_log(target, "churn-stream")
    now = datetime.now(UTC) + timedelta(seconds=1)
    newest = stream_figures(log, Window(rows=3), now)
    assert (newest.events, newest.dead_letters) == (3, 3)  # the last three events: the bad ones
    assert newest.redeliveries == 2  # events 7 and 8, logged twice
    assert newest.metrics()["stream.dead_letter_rate"] == 1.0
    before = stream_figures(log, Window(seconds=60), now - timedelta(hours=1))
    assert before.metrics() == {
        "stream.events": 0.0,
        "stream.dead_letters": 0.0,
        "stream.dead_letter_rate": None,
        "stream.redeliveries": 0.0,
        "stream.late": 0.0,
        "stream.latency_p50_ms": None,
        "stream.latency_p99_ms": None,
    }
    assert read_stream_log(LogTarget.of(tmp_path / "empty"), "churn-stream").is_empty()


SPEC = """\
name: churn-stream
source: {url: "redis://127.0.0.1:6379/0", stream: churn-events, group: scorers}
model: "churn@production"
output: {stream: churn-predictions}
dead_letter: {stream: churn-dead}
"""


def _rules(folder: Path, rule: str) -> Path:
    path = folder / "alerts.yaml"
    path.write_text(f"rules:\n  - name: behind\n{rule}", encoding="utf-8")
    return path


def test_a_stream_rule_names_its_spec_relative_to_the_rules_file(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "churn-stream.yaml").write_text(SPEC, encoding="utf-8")
    path = _rules(tmp_path, '    stream: specs/churn-stream.yaml\n    metric: stream.lag\n'
                  '    condition: "> 10"\n')  # fmt: skip
    rules = parse_rules(path.read_text(), path)
    (rule,) = rules.rules
    assert rule.stream == str((tmp_path / "specs" / "churn-stream.yaml").resolve())
    assert rules.streams == [rule.stream]
    assert rules.for_model("churn") == []  # a stream's rule does not watch every model


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            '    metric: stream.lag\n    condition: "> 10"\n',
            "line 2, field rules[0].stream: rule 'behind' watches stream.lag, which is read "
            "from a stream: name its stream spec with `stream: FILE`",
        ),
        (
            '    stream: churn-stream.yaml\n    metric: drift.share\n    condition: "> 0.3"\n',
            "field rules[0].stream: rule 'behind': only stream.* metrics are read from a "
            "stream; drift.share needs a model",
        ),
        (
            '    stream: churn-stream.yaml\n    metric: stream.lagg\n    condition: "> 1"\n',
            "field rules[0].metric: unknown stream metric 'stream.lagg': expected one of "
            "stream.lag, stream.pending, stream.events",
        ),
        (
            '    stream: missing.yaml\n    metric: stream.lag\n    condition: "> 1"\n',
            "field rules[0].stream: rule 'behind': stream spec ",
        ),
        (
            '    stream: churn-stream.yaml\n    metric: stream.lag\n    condition: "> 1"\n'
            "    actions: [log, retrain]\n",
            "field rules[0].actions[1]: rule 'behind': action retrain needs a model to train",
        ),
    ],
)
def test_stream_rules_that_cannot_work_are_refused_naming_the_rule_and_field(
    tmp_path: Path, rule: str, expected: str
) -> None:
    (tmp_path / "churn-stream.yaml").write_text(SPEC, encoding="utf-8")
    path = _rules(tmp_path, rule)
    with pytest.raises(RulesError) as caught:
        parse_rules(path.read_text(), path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line "), message
    assert expected in message, message


LOGGED = st.lists(
    st.tuples(
        st.integers(0, 7),  # the event
        st.sampled_from(["stream", "error", "shadow"]),
        st.integers(0, 600),  # seconds after T0 it was logged
        st.booleans(),  # late
        st.integers(-5, 120),  # seconds it waited since its append (negative: clocks apart)
    ),
    max_size=30,
)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _frame(rows: list[tuple[int, str, int, bool, int]]) -> pl.DataFrame:
    outputs = []
    for _event_no, role, logged, late, waited in rows:
        appended = T0 + timedelta(seconds=logged - waited)
        output = {"prediction": "no", "late": late, "appended_at": appended.isoformat()}
        outputs.append("" if role == "error" else json.dumps(output))
    return pl.DataFrame(
        {
            "request_id": [f"e{row[0]}" for row in rows],
            "at": [T0 + timedelta(seconds=row[2]) for row in rows],
            "role": [row[1] for row in rows],
            "output": outputs,
        },
        schema={
            "request_id": pl.String(),
            "at": pl.Datetime("us", "UTC"),
            "role": pl.String(),
            "output": pl.String(),
        },
    )


@settings(derandomize=True, max_examples=60, deadline=None)
@given(rows=LOGGED, seconds=st.integers(1, 700))
def test_the_figures_agree_with_counting_by_hand(
    rows: list[tuple[int, str, int, bool, int]], seconds: int
) -> None:
    now = T0 + timedelta(seconds=600)
    figures = stream_figures(_frame(rows), Window(seconds=seconds), now)
    start = now - timedelta(seconds=seconds)
    kept = [
        (i, row)
        for i, row in enumerate(rows)
        if row[1] != "shadow" and start <= T0 + timedelta(seconds=row[2]) <= now
    ]
    first: dict[int, tuple[int, str, int, bool, int]] = {}
    for _i, row in sorted(kept, key=lambda item: (item[1][2], item[0])):
        first.setdefault(row[0], row)
    scored = [row for row in first.values() if row[1] == "stream"]
    assert figures.events == len(first)
    assert figures.dead_letters == sum(row[1] == "error" for row in first.values())
    assert figures.redeliveries == len(kept) - len(first)
    assert figures.late == sum(row[3] for row in scored)
    waited = [max(row[4], 0) * 1000.0 for row in scored]
    if waited:
        assert figures.latency_p50_ms == pytest.approx(np.percentile(waited, 50))
        assert figures.latency_p99_ms == pytest.approx(np.percentile(waited, 99))
    else:
        assert figures.latency_p50_ms is None and figures.latency_p99_ms is None
    rate = figures.metrics()["stream.dead_letter_rate"]
    assert rate is None if not first else rate == figures.dead_letters / figures.events
