"""Progressive rollouts judged by the always-valid test: one step at a time, safe to repeat.

A rollout sends a growing share of a model's traffic to a candidate version (``steps: [5, 25,
50, 100]`` percent), the rest to the version in production, and moves by itself: forward when
the candidate has held its checks for ``hold`` at a step, back to 0 % as soon as it is
significantly worse or fails a check. :func:`judge` decides from the labelled traffic of the
current step only (the comparison of :mod:`mlship.monitor.abtest`, whose p-value may be read at
every look, so judging every minute from cron costs no false alarms beyond ``alpha``), and
:func:`step_rollout` applies the decision through the store, which records it in the model's
history with its figures. Both take ``now``, so a decision can be replayed and tested without
waiting.

The last step is 100 % and the rollout then *holds*: putting the candidate in production stays a
human decision (a request and someone else's approval). Once the candidate is in production the
rollout is done. Until then its checks go on being judged, and a failure still rolls it back.

A step moves forward only on evidence: the candidate must have answered ``min_requests``
requests in the step, and below 100 % both versions need enough labelled records for the test
to have looked at all; a quiet hour is not a passed hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from mlship.errors import DataError, NotFoundError
from mlship.monitor.abtest import AbResult, AbStores, Comparison, Variant, compare_variants
from mlship.monitor.sequential import MIN_PER_ARM
from mlship.monitor.window import Window, format_duration
from mlship.spec.deployment import Deployment
from mlship.store.context import HasRollouts
from mlship.store.entities import Rollout
from mlship.store.rollouts import Move, RolloutPlan


class RolloutStores(AbStores, HasRollouts, Protocol):
    """What judging a rollout reads and moves: the versions, the logs, the rollouts."""


@dataclass(frozen=True)
class Checks:
    """The health a candidate must keep at every step (see ``RolloutChecks`` in the
    deployment file)."""

    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    min_requests: int = 20

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Checks:
        rate, p99 = stored.get("max_error_rate"), stored.get("max_p99_ms")
        return cls(
            None if rate is None else float(rate),
            None if p99 is None else float(p99),
            int(stored.get("min_requests", 20)),
        )


@dataclass(frozen=True)
class Judgement:
    """One look at a rollout: what the step's traffic showed and the move it calls for."""

    rollout: Rollout
    """The rollout as it stood when judged."""
    at: datetime
    result: AbResult | None
    comparison: Comparison | None
    """The candidate against the control, when both answered in the step."""
    candidate: Variant | None
    failures: tuple[str, ...]
    waiting: str | None
    """Why it does not move yet (None when it moves, or is over)."""
    move: Move | None
    after: Rollout | None = None
    """The rollout after the move was applied."""

    @property
    def state(self) -> Rollout:
        return self.after or self.rollout

    def to_dict(self) -> dict[str, Any]:
        state = self.state
        return {
            "at": self.at.isoformat(),
            "rollout": rollout_dict(state),
            "moved": None if self.move is None else self.move.action,
            "reasons": list(self.move.reasons) if self.move is not None else [],
            "waiting": self.waiting,
            "failures": list(self.failures),
            "candidate": None if self.candidate is None else self.candidate.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "metric": None if self.result is None else self.result.metric,
        }


def rollout_dict(rollout: Rollout) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "model": rollout.model,
        "candidate": rollout.candidate,
        "control": rollout.control,
        "deployment": rollout.deployment,
        "steps": rollout.steps,
        "step": rollout.step + 1,
        "weight": rollout.weight,
        "status": rollout.status,
        "since": rollout.since.isoformat(),
        "hold": format_duration(rollout.hold_seconds),
        "alpha": rollout.alpha,
        "effect": rollout.effect,
        "checks": rollout.checks,
        "reasons": rollout.reasons,
        "started_by": rollout.started_by,
        "started_at": rollout.started_at.isoformat(),
    }


def plan_of(deployment: Deployment, where: str) -> RolloutPlan:
    """The rollout a deployment file asks for (``where`` names the file in the error)."""
    spec = deployment.rollout
    if spec is None:
        raise DataError(
            f"{where}: no rollout: block (such as `rollout: {{model: churn, candidate: 4, "
            f"steps: [5, 25, 50, 100], hold: 30m}}`)"
        )
    return RolloutPlan(
        model=spec.model,
        candidate=spec.candidate,
        deployment=deployment.name,
        steps=tuple(spec.steps),
        hold_seconds=spec.hold_seconds,
        alpha=spec.alpha,
        effect=spec.effect,
        checks=spec.checks.model_dump(),
    )


def start_rollout(
    workspace: RolloutStores, plan: RolloutPlan, now: datetime | None = None
) -> tuple[Rollout, bool]:
    """Start ``plan`` at its first step (or find it running already: the same command twice
    starts it once)."""
    return workspace.rollouts.start(plan, now or datetime.now(UTC))


def current_rollout(workspace: HasRollouts, model: str) -> Rollout:
    found = workspace.rollouts.current(model)
    if found is None:
        raise NotFoundError(
            f"{model} has no rollout: `mlship rollout start DEPLOYMENT.yaml` starts one"
        )
    return found


def _compare(workspace: RolloutStores, rollout: Rollout, now: datetime) -> AbResult:
    """Each version's figures over the current step, and the candidate against the control
    when the control answered in it."""
    seconds = max((now - rollout.since).total_seconds(), 1.0)
    window = Window(seconds=seconds)
    options: dict[str, Any] = {"alpha": rollout.alpha, "effect": rollout.effect, "now": now}
    try:
        return compare_variants(
            workspace, rollout.model, window, control=rollout.control, **options
        )
    except NotFoundError:  # the control answered nothing in the step (at 100 %, by design)
        return compare_variants(workspace, rollout.model, window, **options)


def _interval(bounds: tuple[float, float] | None) -> str:
    return "-" if bounds is None else f"[{bounds[0]:+.4f}, {bounds[1]:+.4f}]"


def _figures(
    result: AbResult, candidate: Variant | None, comparison: Comparison | None
) -> dict[str, Any]:
    """The figures of a move, flat, for the history."""
    figures: dict[str, Any] = {}
    if comparison is not None and comparison.test.difference is not None:
        test = comparison.test
        figures[result.metric] = f"{test.difference:+.4f}"
        figures["interval"] = _interval(test.interval)
        figures["p"] = float(f"{test.p_value:.4g}")
        figures["labelled"] = f"{test.n_b} vs {test.n_a}"
    if candidate is not None:
        health = candidate.health
        figures["requests"] = int(health.get("requests") or 0)
        rate, p99 = health.get("error_rate"), health.get("latency_p99_ms")
        if rate is not None:
            figures["error_rate"] = float(f"{rate:.4g}")
        if p99 is not None:
            figures["p99_ms"] = float(f"{p99:.4g}")
    return figures


def _check_failures(
    rollout: Rollout, result: AbResult, candidate: Variant | None, comparison: Comparison | None
) -> list[str]:
    failures = []
    checks = Checks.of(rollout.checks)
    ref, control = f"{rollout.model}:{rollout.candidate}", f"{rollout.model}:{rollout.control}"
    if comparison is not None and comparison.verdict == "worse":
        test = comparison.test
        failures.append(
            f"{ref} is significantly worse than {control}: {result.metric} "
            f"{test.difference:+.4f}, {1 - test.alpha:.0%} always-valid interval "
            f"{_interval(test.interval)}, sequential p = {test.p_value:.4g} < {test.alpha:g}"
        )
    requests = 0.0 if candidate is None else candidate.health.get("requests") or 0.0
    if candidate is None or requests < checks.min_requests:
        return failures
    rate, p99 = candidate.health.get("error_rate"), candidate.health.get("latency_p99_ms")
    if checks.max_error_rate is not None and rate is not None and rate > checks.max_error_rate:
        failures.append(
            f"{ref}'s error rate {rate:.2%} is above max_error_rate {checks.max_error_rate:.2%} "
            f"({requests:.0f} requests)"
        )
    if checks.max_p99_ms is not None and p99 is not None and p99 > checks.max_p99_ms:
        failures.append(
            f"{ref}'s p99 latency {p99:.1f} ms is above max_p99_ms {checks.max_p99_ms:g} "
            f"({requests:.0f} requests)"
        )
    return failures


def _short_of_evidence(
    rollout: Rollout, candidate: Variant | None, comparison: Comparison | None
) -> str | None:
    """Why the step's traffic is too little to move on, or None."""
    checks = Checks.of(rollout.checks)
    requests = 0.0 if candidate is None else candidate.health.get("requests") or 0.0
    ref = f"{rollout.model}:{rollout.candidate}"
    if requests < checks.min_requests:
        return (
            f"{ref} answered {requests:.0f} requests in this step; its checks need "
            f"{checks.min_requests} (min_requests)"
        )
    if rollout.weight < 100 and (comparison is None or comparison.test.looks == 0):
        counts = (
            "none" if comparison is None else (f"{comparison.test.n_b} and {comparison.test.n_a}")
        )
        return (
            f"too few labelled records to compare {ref} with {rollout.model}:{rollout.control} "
            f"in this step ({counts}; each version needs {MIN_PER_ARM})"
        )
    return None


def judge(workspace: RolloutStores, rollout: Rollout, now: datetime | None = None) -> Judgement:
    """The move ``rollout`` calls for at ``now`` (None: none), from its current step's traffic.
    Reads only: :func:`step_rollout` applies the move."""
    at = now or datetime.now(UTC)
    if not rollout.active:
        return Judgement(rollout, at, None, None, None, (), None, None)
    ref = f"{rollout.model}:{rollout.candidate}"
    if workspace.catalogue.get_version(rollout.model, rollout.candidate).stage == "production":
        done = Move("done", rollout.step, 100.0, "done", (f"{ref} is in production",))
        return Judgement(rollout, at, None, None, None, (), None, done)
    result = _compare(workspace, rollout, at)
    candidate = next((v for v in result.variants if v.version == rollout.candidate), None)
    comparison = next(
        (c for c in result.comparisons
         if c.control == rollout.control and c.treatment == rollout.candidate),
        None,
    )  # fmt: skip
    failures = tuple(_check_failures(rollout, result, candidate, comparison))
    move, waiting = _decide(rollout, at, candidate, comparison, failures)
    if move is not None:
        move = replace(move, figures=_figures(result, candidate, comparison))
    return Judgement(rollout, at, result, comparison, candidate, failures, waiting, move)


def _decide(
    rollout: Rollout,
    at: datetime,
    candidate: Variant | None,
    comparison: Comparison | None,
    failures: tuple[str, ...],
) -> tuple[Move | None, str | None]:
    """The move (or why there is none) once the step's figures are known."""
    ref = f"{rollout.model}:{rollout.candidate}"
    if failures:
        return Move("rolled back", rollout.step, 0.0, "rolled back", failures), None
    if rollout.status == "holding":
        return None, (
            f"{ref} holds at 100% and is ready for production: `mlship models promote {ref} "
            "--to production`, then a second person approves"
        )
    held = (at - rollout.since).total_seconds()
    hold = format_duration(rollout.hold_seconds)
    if held < rollout.hold_seconds:
        left = format_duration(max(1, int(rollout.hold_seconds - held)))
        return None, f"checks hold; {left} more at {rollout.weight:g}% before moving on"
    short = _short_of_evidence(rollout, candidate, comparison)
    if short is not None:
        return None, short
    if rollout.step == len(rollout.steps) - 1:
        reason = (
            f"checks held for {hold} at 100%: {ref} is ready for production "
            f"(`mlship models promote {ref} --to production`, then a second person approves)"
        )
        return Move("holding", rollout.step, rollout.weight, "holding", (reason,)), None
    following = rollout.steps[rollout.step + 1]
    reason = f"checks held for {hold} at {rollout.weight:g}%: on to {following:g}%"
    return Move("advanced", rollout.step + 1, following, "running", (reason,)), None


def step_rollout(workspace: RolloutStores, model: str, now: datetime | None = None) -> Judgement:
    """Judge ``model``'s current rollout once and apply the move it calls for, if any."""
    at = now or datetime.now(UTC)
    rollout = current_rollout(workspace, model)
    judgement = judge(workspace, rollout, at)
    if judgement.move is None:
        return judgement
    return replace(judgement, after=workspace.rollouts.move(rollout, judgement.move, at))
