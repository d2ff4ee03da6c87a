"""The figures ``mlship loadtest`` reads from its requests: percentiles, the per-second timeline
and the longest time without a successful answer; and a replica's restart backoff."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.deploy.replicas import MAX_BACKOFF_S, STEADY_S, Replica, describe_exit, free_ports
from mlship.loadtest.open_loop import (
    DURING_S,
    Kill,
    Load,
    Outcome,
    Run,
    longest_gap,
    percentile,
    phases,
    summarise,
)


def _ok(due: float, latency: float) -> Outcome:
    return Outcome(due, latency, 200, None, f"id-{due}")


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([], 0.5) is None


def test_the_longest_gap_runs_between_two_answers_or_to_the_end() -> None:
    answers = (_ok(0.0, 0.1), _ok(0.5, 0.1), _ok(1.0, 2.5), _ok(1.5, 0.1))
    gap = longest_gap(answers, end_s=2.0)
    # Answers at 0.1, 0.6, 1.6 and 3.5 s (the one due at 1.0 s stalled): nothing from 1.6 s on.
    assert round(gap.seconds, 6) == 1.9 and gap.from_s == 1.6
    failed = Outcome(2.0, 0.5, 502, "HTTP 502", None)
    assert round(longest_gap((*answers, failed), end_s=9.0).seconds, 6) == 5.5
    assert longest_gap((failed,), end_s=3.0).seconds == 3.0


def test_a_summary_counts_failures_by_kind_and_answers_by_second() -> None:
    outcomes = (
        _ok(0.0, 0.2),
        _ok(0.5, 0.7),
        Outcome(1.0, 0.1, None, "ConnectError", None),
        Outcome(1.5, 0.1, 502, "HTTP 502", None),
        Outcome(1.6, 0.1, 502, "HTTP 502", None),
        _ok(2.0, 0.3),
    )
    load = Load("http://127.0.0.1:1/predict", rate=2, duration_s=3)
    summary = summarise(Run(load, outcomes, (), elapsed_s=3.0))
    assert (summary.requests, summary.ok, summary.failed) == (6, 3, 3)
    assert summary.errors == {"HTTP 502": 2, "ConnectError": 1}
    assert [(s.second, s.ok, s.failed) for s in summary.timeline] == [
        (0, 1, 0),
        (1, 1, 3),
        (2, 1, 0),
    ]
    assert summary.throughput == 1.0
    assert summary.p50_ms is not None and round(summary.p50_ms) == 300


def test_requests_are_grouped_before_during_and_after_the_kills() -> None:
    kills = (Kill(5.0, "kill -9 1", 0, ""), Kill(10.0, "kill -9 1", 0, ""))
    outcomes = (
        _ok(1.0, 0.010),
        _ok(4.9, 0.020),
        _ok(5.0, 0.900),  # the first kill's
        Outcome(6.0, 0.1, 503, "HTTP 503", None),
        _ok(5.0 + DURING_S, 0.030),  # after: the window is over
        _ok(11.0, 0.500),  # the second kill's
    )
    found = {p.name: p for p in phases(outcomes, kills)}
    assert [(p.requests, p.failed) for p in found.values()] == [(2, 0), (3, 1), (1, 0)]
    assert found["during"].p99_ms == 900 and found["after"].p99_ms == 30
    assert phases(outcomes, ()) == ()
    summary = summarise(Run(Load("http://x/", 1, 12), outcomes, kills, elapsed_s=12.0))
    assert summary.phases == phases(outcomes, kills)


@settings(derandomize=True, max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 100), st.floats(0, 30), st.sampled_from([None, "HTTP 503", "ReadError"])
        ),
        max_size=50,
    )
)
def test_any_outcomes_summarise_consistently(raw: list[tuple[float, float, str | None]]) -> None:
    outcomes = tuple(Outcome(due, lat, None, error, None) for due, lat, error in raw)
    summary = summarise(Run(Load("http://x/", 1, 100), outcomes, (), elapsed_s=100.0))
    assert summary.ok + summary.failed == len(outcomes)
    assert sum(s.ok + s.failed for s in summary.timeline) == len(outcomes)
    assert sum(summary.errors.values()) == summary.failed
    assert 0 <= summary.gap.seconds <= max([100.0, *(o.done_s for o in outcomes)])
    kills = (Kill(50.0, "true", 0, ""),)
    assert sum(p.requests for p in phases(outcomes, kills)) == len(outcomes)


def test_a_replica_that_keeps_dying_waits_longer_each_time_up_to_a_limit(tmp_path: Path) -> None:
    replica = Replica(1, 1, ("true",), tmp_path / "log", tmp_path / "pid")
    replica.started_at = 0.0
    waits = [replica.schedule_restart(-9, now=1.0) for _ in range(9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]
    assert replica.last_exit == "killed by SIGKILL"
    replica.started_at = 100.0  # ran long enough to count as healthy: the next restart is quick
    assert replica.schedule_restart(1, now=100.0 + STEADY_S) == 0.5
    assert replica.last_exit == "exited 1"
    assert describe_exit(-15) == "killed by SIGTERM"


def test_free_ports_differ_and_avoid_the_ones_taken() -> None:
    taken = free_ports(3)
    chosen = free_ports(20, avoid=taken)
    assert len(set(chosen)) == 20 and not set(chosen) & set(taken)
