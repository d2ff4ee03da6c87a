"""Which artifacts the tiering rules move, what a plan says it saves, and the rules' settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlship.prices import GB
from mlship.retention import GcRule, GcSettings
from mlship.store.gc import ColdTier, Doomed, Moved, Plan, tiered_by_rules
from mlship.store.references import Holder

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _holder(kind: str, group: str, days_old: int, *addresses: str) -> Holder:
    return Holder(kind, group, NOW - timedelta(days=days_old), addresses)


def test_old_versions_beyond_the_newest_kept_move_and_shared_ones_stay() -> None:
    found = [
        _holder("datasets", "churn", 200, "a" * 64, "p" * 64),
        _holder("datasets", "churn", 150, "b" * 64, "p" * 64),  # shares a profile with the newest
        _holder("datasets", "churn", 100, "c" * 64, "p" * 64),
        _holder("datasets", "fraud", 300, "d" * 64),
        _holder("models", "1", 400, "e" * 64),
    ]
    rule = GcRule(what="datasets", action="tier", older_than="90d", keep_versions=1)
    moved = tiered_by_rules(found, [rule], NOW)
    assert moved == {"a" * 64: "datasets", "b" * 64: "datasets"}  # fraud's only version is kept

    young = GcRule(what="datasets", action="tier", older_than="160d")
    assert set(tiered_by_rules(found, [young], NOW)) == {"a" * 64, "d" * 64}


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    ages=st.lists(st.tuples(st.sampled_from("xyz"), st.integers(0, 400)), max_size=8),
    keep=st.integers(0, 3),
    older=st.integers(0, 400),
)
def test_a_rule_never_moves_what_a_kept_holder_names(
    ages: list[tuple[str, int]], keep: int, older: int
) -> None:
    found = [_holder("models", group, age, f"{i % 3:064x}") for i, (group, age) in enumerate(ages)]
    rule = GcRule(what="models", action="tier", older_than=f"{older}d", keep_versions=keep)
    moved = tiered_by_rules(found, [rule], NOW)
    for group in "xyz":
        members = sorted(
            (h for h in found if h.group == group), key=lambda h: h.created, reverse=True
        )
        for rank, holder in enumerate(members):
            if rank < keep or holder.created > NOW - timedelta(days=older):
                assert not set(holder.addresses) & set(moved)


def test_a_plan_prices_each_tier() -> None:
    when = NOW
    planned = Plan(
        artifacts=(Doomed("a" * 64, GB, when, "x"), Doomed("b" * 64, 2 * GB, when, "x", cold=True)),
        datasets=(),
        kept=3,
        kept_young=0,
        price_gb_month=0.023,
        currency="USD",
        tiered=(Moved("c" * 64, 10 * GB, when, "datasets"),),
        hot_bytes=20 * GB,
        cold_bytes=5 * GB,
        cold=ColdTier("s3-standard-ia", "S3 Standard-IA", 0.0125),
    )
    assert planned.monthly_saving == pytest.approx(0.023 + 2 * 0.0125)
    assert planned.tier_saving == pytest.approx(10 * (0.023 - 0.0125))
    assert planned.after == (20 * GB - GB - 10 * GB, 5 * GB - 2 * GB + 10 * GB)


@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({"what": "runs", "action": "tier"}, "what"),
        ({"what": "models", "action": "archive"}, "action"),
        ({"what": "models", "action": "tier", "older_than": "3 weeks"}, "older_than"),
        ({"what": "models", "action": "tier", "keep_versions": -2}, "keep_versions"),
        ({"what": "reports", "action": "delete"}, 'action = "delete" applies'),
        ({"what": "logs", "action": "tier"}, "log parts are deleted"),
        ({"what": "models", "action": "tier", "ttl": "1d"}, "ttl"),
    ],
)
def test_bad_rules_say_which_field(fields: dict[str, object], wanted: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GcSettings.model_validate({"rules": [fields]})
    assert wanted in str(caught.value)


def test_storage_class_must_look_like_one() -> None:
    with pytest.raises(ValidationError, match="storage_class"):
        GcSettings(storage_class="standard ia")
    assert GcSettings(storage_class="GLACIER_IR").storage_class == "GLACIER_IR"
