"""Rules on spending: the rules a budget with ``alert = true`` adds, and the cost measure.

A budget that alerts becomes two ordinary rules on ``cost.budget_share`` of its team or model,
a warning at ``warn_at`` and a critical alert at 1.0, so budgets are evaluated, cooled down,
recorded and delivered exactly like the rules of the file. They cool down for a day (a forecast
moves slowly; hearing about it every hour helps nobody) and act like the file's rules: a log
line, and the file's webhook when it has one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from mlship.budget_settings import Budget
from mlship.costs.budgets import cost_metrics
from mlship.costs.items import CostItem
from mlship.monitor.alerts import CostMeasure
from mlship.monitor.rules import Action, Condition, Rule, RulesError, RuleSet
from mlship.monitor.window import Window

BUDGET_COOLDOWN = timedelta(days=1)
BUDGET_WINDOW = Window(seconds=86400.0)
"""The window budget rules name; the share they watch is the month's, whatever the window."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME_KEPT = 170
"""Characters of a team's or a model's name kept in its budget rules' names (200 at most)."""


def budget_rule_name(budget: Budget, level: str) -> str:
    """``budget.team.growth.warning``: a rule name (letters, digits, ``-_.``) per budget."""
    kind, name = ("team", budget.team) if budget.team is not None else ("model", budget.model)
    return f"budget.{kind}.{_UNSAFE.sub('-', name or '')[:_NAME_KEPT]}.{level}"


def budget_rules(budgets: Iterable[Budget], webhook: bool) -> list[Rule]:
    """The two rules of each budget with ``alert = true``."""
    actions: tuple[Action, ...] = ("log", "webhook") if webhook else ("log",)
    rules = []
    for budget in budgets:
        if not budget.alert:
            continue
        for level, share in (("warning", budget.warn_at), ("critical", 1.0)):
            rules.append(
                Rule(
                    name=budget_rule_name(budget, level),
                    model=budget.model,
                    team=budget.team,
                    metric="cost.budget_share",
                    window=BUDGET_WINDOW,
                    condition=Condition(">=", share),
                    severity="warning" if level == "warning" else "critical",
                    cooldown=BUDGET_COOLDOWN,
                    actions=actions,
                    description=f"the month's forecast spend of {budget.described} reaches "
                    f"{share:.0%} of its budget of {budget.monthly:g}",
                )
            )
    return rules


def with_budgets(rules: RuleSet, budgets: Sequence[Budget]) -> RuleSet:
    """``rules`` and the rules of the budgets that alert (:func:`budget_rules`)."""
    added = budget_rules(budgets, webhook=rules.webhook is not None)
    if not added:
        return rules
    taken = {rule.name for rule in rules.rules}
    clash = next((rule.name for rule in added if rule.name in taken), None)
    if clash is not None:
        raise RulesError(
            f"the rules file has a rule called {clash!r}, the name of a budget's own rule; "
            "rename it (names starting with `budget.` are the budgets')"
        )
    return rules.model_copy(update={"rules": (*rules.rules, *added)})


def cost_measure(
    load: Callable[[float], Sequence[CostItem]], budgets: Sequence[Budget], now: datetime
) -> CostMeasure:
    """The cost metrics of models and teams at ``now``, from the items ``load(seconds)`` gives
    (those reaching back ``seconds`` before now, at least the month and the forecast's rate
    window); loaded once, on first use, for the longest window asked for."""
    loaded: dict[str, tuple[float, Sequence[CostItem]]] = {}

    def measure(model: str | None, team: str | None, window: Window) -> Mapping[str, float | None]:
        seconds = window.seconds or 0.0
        if "items" not in loaded or loaded["items"][0] < seconds:
            loaded["items"] = (seconds, load(seconds))
        items = loaded["items"][1]
        return cost_metrics(items, budgets, now, model=model, team=team, seconds=window.seconds)

    return measure
