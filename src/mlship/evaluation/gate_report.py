"""The gate's verdict for machines and for people: JSON, a JUnit report and a Markdown summary.

JUnit because every CI system shows its failures without a plugin: the gate is one test suite
and each check one test case, a failed check carrying its reason as the failure message. Markdown
because a pull request's comment is where the people who merge read it.
"""

from __future__ import annotations

import math
from typing import Any
from xml.etree import ElementTree as ET

from mlship.evaluation.gate import GateVerdict
from mlship.train.metrics import metric_label

FORMAT_VERSION = 1


def _number(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def verdict_dict(verdict: GateVerdict) -> dict[str, Any]:
    """The verdict as plain JSON values."""
    difference = verdict.difference
    test = verdict.test
    return {
        "format": FORMAT_VERSION,
        "passed": verdict.passed,
        "candidate": verdict.candidate,
        "baseline": verdict.baseline,
        "task": verdict.task,
        "rows": verdict.rows,
        "rows_from": verdict.rows_from,
        "require": verdict.require,
        "metric": {
            "name": difference.metric,
            "greater_is_better": difference.greater_is_better,
            "candidate": _number(difference.candidate),
            "baseline": _number(difference.baseline),
            "improvement": _number(difference.improvement),
            "low": _number(difference.low),
            "high": _number(difference.high),
            "confidence": difference.confidence,
            "method": "paired percentile bootstrap",
            "resamples": difference.resamples,
            "seed": difference.seed,
        },
        "test": None
        if test is None
        else {
            "name": test.name,
            "statistic": _number(test.statistic),
            "p_value": _number(test.p_value),
            "detail": test.detail,
        },
        "checks": [
            {
                "name": check.name,
                "passed": check.passed,
                "measured": check.measured,
                "reason": "" if check.passed else check.reason,
            }
            for check in verdict.checks
        ],
        "reasons": verdict.reasons,
        "notes": list(verdict.notes),
    }


def verdict_junit(verdict: GateVerdict) -> str:
    """One ``<testsuite>`` named for the comparison, one ``<testcase>`` per check."""
    failures = sum(not check.passed for check in verdict.checks)
    suites = ET.Element("testsuites", name="mlship gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"gate {verdict.candidate} against {verdict.baseline}",
        tests=str(len(verdict.checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for check in verdict.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"gate.{verdict.candidate}", name=check.name
        )
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.reason, type="gate")
            failure.text = check.measured
        out = ET.SubElement(case, "system-out")
        out.text = check.measured
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def verdict_markdown(verdict: GateVerdict) -> str:
    """A summary for a pull request's comment: the verdict, the numbers, every reason."""
    difference = verdict.difference
    label = metric_label(difference.metric)
    mark = "passed" if verdict.passed else "failed"
    lines = [
        f"### Gate {mark}: `{verdict.candidate}` against `{verdict.baseline}`",
        "",
        f"Scored on {verdict.rows_from}; `require: {verdict.require}`.",
        "",
        f"| {_cell(label)} | value |",
        "|---|---|",
        f"| `{verdict.candidate}` (candidate) | {difference.candidate:.4f} |",
        f"| `{verdict.baseline}` (baseline) | {difference.baseline:.4f} |",
        f"| improvement | {difference.improvement:+.4f} |",
        f"| {difference.confidence:.0%} interval (paired bootstrap, {difference.resamples} "
        f"resamples) | [{difference.low:+.4f}, {difference.high:+.4f}] |",
    ]
    if verdict.test is not None:
        lines.append(
            f"| {verdict.test.name} | p = {verdict.test.p_value:.4g} "
            f"({_cell(verdict.test.detail)}) |"
        )
    lines += ["", "| check | result | measured |", "|---|---|---|"]
    for check in verdict.checks:
        result = "pass" if check.passed else "**fail**"
        lines.append(f"| {check.name} | {result} | {_cell(check.measured)} |")
    if verdict.reasons:
        lines += ["", "Why it failed:", ""]
        lines += [f"- {reason}" for reason in verdict.reasons]
    if verdict.notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {note}" for note in verdict.notes]
    return "\n".join(lines) + "\n"
