"""``mlship monitor ab``: the variants of a canary or A/B split, compared on labelled traffic."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import fmt
from mlship.errors import MlshipError
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.monitor.abtest import AbResult, Comparison


def _interval(bounds: tuple[float, float] | None) -> str:
    return "-" if bounds is None else f"[{bounds[0]:+.4f}, {bounds[1]:+.4f}]"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _variants_table(result: AbResult) -> Table:
    table = Table(title=f"Variants of {result.model} ({result.window.label})")
    names = ("version", "stage", "answered", "labelled", result.metric, "requests", "error rate",
             "p50 ms", "p99 ms")  # fmt: skip
    for name in names:
        table.add_column(name, justify="left" if name in ("version", "stage") else "right")
    for variant in result.variants:
        health = variant.health
        control = " (control)" if variant.version == result.control else ""
        rate = health.get("error_rate")
        table.add_row(
            f"{result.model}:{variant.version}{control}",
            variant.stage,
            str(variant.answered),
            str(variant.labelled),
            fmt(variant.metric),
            "-" if health.get("requests") is None else f"{health['requests']:.0f}",
            "-" if rate is None else f"{rate:.2%}",
            fmt(health.get("latency_p50_ms"), 1),
            fmt(health.get("latency_p99_ms"), 1),
        )
    return table


def _sentence(result: AbResult, comparison: Comparison) -> str:
    test = comparison.test
    pair = f"{result.model}:{comparison.treatment} against {result.model}:{comparison.control}"
    if test.looks == 0:
        from mlship.monitor.sequential import MIN_PER_ARM

        return (
            f"{pair}: too few labelled records to compare ({test.n_b} and {test.n_a}; each "
            f"version needs {MIN_PER_ARM})"
        )
    level = f"{1 - test.alpha:.0%}"
    figures = (
        f"{result.metric} {test.difference:+.4f}, {level} always-valid interval "
        f"{_interval(test.interval)}, sequential p = {test.p_value:.4g} "
        f"(one-look z-test: p = {_p(test.fixed_p_value)}, {_interval(test.fixed_interval)})"
    )
    verdicts = {
        "better": "significantly better",
        "worse": "significantly worse",
        "undecided": f"no significant difference yet at {test.alpha:g}",
    }
    return f"{pair}: {figures}: {verdicts[comparison.verdict]}"


def ab(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    window: Annotated[
        str, typer.Option("--window", "-w", help="Traffic to compare: '5000 rows' or a duration.")
    ] = "1d",
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    effect: Annotated[
        float | None,
        typer.Option(
            "--effect",
            help="Difference worth finding, in the metric's units "
            "(default: 0.05 of accuracy; 10% of the control's test-set MAE).",
        ),
    ] = None,
    control: Annotated[
        int | None,
        typer.Option(
            "--control",
            help="Version to compare the others with (default: the "
            "production one, else the one that answered most).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Compare the versions a deployment routes to: metric, always-valid test, latency, errors."""
    from mlship.monitor.abtest import compare_variants
    from mlship.monitor.window import Window

    try:
        parsed = Window.parse(window)
    except ValueError as exc:
        raise MlshipError(f"--window: {exc}") from None
    workspace = Workspace.open()
    try:
        result = compare_variants(
            workspace, model, parsed, alpha=alpha, effect=effect, control=control
        )
    finally:
        workspace.close()
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    if not result.variants:
        out.print(f"No traffic for {model} in the {parsed.label}.")
        return
    out.print(_variants_table(result))
    if not result.comparisons:
        out.print(
            f"Only {model}:{result.control} answered in the {parsed.label}: nothing to compare."
        )
        return
    for comparison in result.comparisons:
        out.print(_sentence(result, comparison))
