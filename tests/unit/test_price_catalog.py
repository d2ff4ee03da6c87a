"""The price catalog's reader, its settings overrides and the what-if arithmetic: the shipped file
reads, a damaged one fails with an error naming what is wrong, never with anything else."""

from __future__ import annotations

from datetime import date
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.errors import ConfigError
from mlship.price_catalog import (
    CATALOG_FILE,
    CatalogError,
    CatalogSettings,
    InstanceType,
    PriceCatalog,
    parse_catalog,
    shipped_catalog,
    what_if,
    with_overrides,
)
from mlship.prices import GB, Usage

SHIPPED = resources.files("mlship").joinpath(CATALOG_FILE).read_text(encoding="utf-8")

SMALL = """
as_of = "2024-06-01"
source = "list prices"
currency = "USD"

[instances."m5.large"]
provider = "aws"
family = "general"
vcpus = 2
memory_gib = 8
on_demand_hour = 0.096
spot_hour = 0.038
reserved_hour = 0.060

[storage."s3-standard"]
provider = "aws"
name = "S3 Standard"
gb_month = 0.023
"""


def test_the_shipped_catalog_is_dated_and_covers_three_clouds() -> None:
    catalog = shipped_catalog()
    assert catalog.as_of == date(2024, 6, 1)
    assert catalog.currency == "USD"
    assert {i.provider for i in catalog.instances} == {"aws", "gcp", "azure"}
    assert len(catalog.instances) >= 12
    assert {i.family for i in catalog.instances} == {"general", "compute"}
    assert {s.key for s in catalog.storage} == {
        "s3-standard",
        "s3-standard-ia",
        "s3-glacier-instant",
        "gcs-standard",
        "gcs-nearline",
        "azure-hot",
        "azure-cool",
    }
    for instance in catalog.instances:  # a discount is never dearer than the list price
        assert instance.spot_hour < instance.on_demand_hour, instance.name
        assert instance.reserved_hour < instance.on_demand_hour, instance.name


def test_a_small_catalog_reads_into_dataclasses() -> None:
    catalog = parse_catalog(SMALL, "small.toml")
    assert catalog.instance("m5.large") == InstanceType(
        name="m5.large",
        provider="aws",
        family="general",
        vcpus=2,
        memory_gib=8.0,
        on_demand_hour=0.096,
        spot_hour=0.038,
        reserved_hour=0.060,
    )
    assert catalog.storage[0].gb_month == 0.023


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("vcpus = 2", "vcpus = 0", "small.toml: instances.m5.large.vcpus: Input should be greater"),
        ("vcpus = 2", 'vcpus = "2"', "instances.m5.large.vcpus: Input should be a valid integer"),
        ("vcpus = 2", "vcpus = 2.5", "instances.m5.large.vcpus"),
        ("spot_hour = 0.038", "spot_hour = -0.01", "instances.m5.large.spot_hour"),
        ("spot_hour = 0.038", "spot_hour = nan", "instances.m5.large.spot_hour"),
        ("spot_hour = 0.038", "spot_hour = inf", "instances.m5.large.spot_hour"),
        ("spot_hour = 0.038\n", "", "instances.m5.large.spot_hour: Field required"),
        ("gb_month = 0.023", "gb_month = 0.023\ncolour = 1", "storage.s3-standard.colour: Extra"),
        ('as_of = "2024-06-01"', 'as_of = "June 2024"', "as_of: expected a date as YYYY-MM-DD"),
        ('as_of = "2024-06-01"', "as_of = 2024-06-01", "as_of: Input should be a valid string"),
        ('currency = "USD"', 'currency = ""', "currency: String should have at least 1"),
        ("vcpus = 2", "vcpus = = 2", "small.toml: not valid TOML"),
    ],
)
def test_a_damaged_catalog_names_what_is_wrong(old: str, new: str, named: str) -> None:
    assert old in SMALL
    with pytest.raises(CatalogError) as caught:
        parse_catalog(SMALL.replace(old, new, 1), "small.toml")
    assert named in str(caught.value)


def test_an_empty_catalog_is_refused() -> None:
    with pytest.raises(CatalogError, match="instances: Field required"):
        parse_catalog('as_of = "2024-06-01"\nsource = "x"\ncurrency = "USD"\n', "e.toml")


def test_the_toml_error_gives_the_line() -> None:
    with pytest.raises(CatalogError, match=r"small\.toml: not valid TOML: .*line 9"):
        parse_catalog(SMALL.replace("vcpus = 2", "vcpus = = 2"), "small.toml")


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_any_text_reads_or_fails_with_a_catalog_error(text: str) -> None:
    message = None
    try:
        parsed = parse_catalog(text, "fuzz.toml")
    except CatalogError as exc:
        message = str(exc)
    if message is not None:
        assert message.startswith("fuzz.toml: ")
    else:
        assert isinstance(parsed, PriceCatalog)


_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(["true", "[]", "{}", "2024-06-01", "[1, 2]"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
_FIELDS = st.sampled_from(
    [
        "vcpus",
        "memory_gib",
        "on_demand_hour",
        "spot_hour",
        "reserved_hour",
        "provider",
        "gb_month",
        "as_of",
        "currency",
    ]
)


def _toml(value: object) -> str:
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    return str(value)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(_FIELDS, _VALUES)
def test_any_value_of_any_field_reads_or_is_named(field: str, value: object) -> None:
    lines = SMALL.splitlines()
    changed = [
        f"{field} = {_toml(value)}" if line.startswith(f"{field} =") else line for line in lines
    ]
    text = "\n".join(changed) + "\n"
    message = None
    try:
        parsed = parse_catalog(text, "fuzz.toml")
    except CatalogError as exc:
        message = str(exc)
    if message is not None:
        assert field in message or "not valid TOML" in message
    else:
        for instance in parsed.instances:
            assert instance.vcpus > 0 and instance.memory_gib > 0
            assert min(instance.on_demand_hour, instance.spot_hour, instance.reserved_hour) >= 0
        assert all(s.gb_month >= 0 for s in parsed.storage)


def test_settings_correct_an_entry_and_add_one() -> None:
    overrides = CatalogSettings.model_validate(
        {
            "instances": {
                "m5.large": {"spot_hour": 0.03},
                "box": {
                    "provider": "onprem",
                    "family": "general",
                    "vcpus": 64,
                    "memory_gib": 256,
                    "on_demand_hour": 1.5,
                    "spot_hour": 1.5,
                    "reserved_hour": 1.0,
                },
            },
            "storage": {"s3-standard": {"gb_month": 0.021}},
        }
    )
    catalog = with_overrides(shipped_catalog(), overrides)
    assert catalog.instance("m5.large").spot_hour == 0.03
    assert catalog.instance("m5.large").on_demand_hour == 0.096
    assert catalog.instance("box").vcpus == 64
    assert catalog.of_provider("onprem").instances == (catalog.instance("box"),)
    assert {s.key: s.gb_month for s in catalog.storage}["s3-standard"] == 0.021
    assert len(catalog.instances) == len(shipped_catalog().instances) + 1


def test_a_new_entry_needs_every_field() -> None:
    overrides = CatalogSettings.model_validate({"storage": {"r2": {"gb_month": 0.015}}})
    with pytest.raises(CatalogError, match=r"catalog\.storage\.r2 .* missing: provider, name"):
        with_overrides(shipped_catalog(), overrides)


def test_bad_settings_name_the_key(tmp_path: object) -> None:
    from mlship.config import load_settings

    with pytest.raises(ConfigError, match=r"catalog\.instances\.m5\.large\.spot_hour"):
        load_settings(catalog={"instances": {"m5.large": {"spot_hour": -1}}})
    with pytest.raises(ConfigError, match=r"catalog\.instances\.m5\.large\.cores"):
        load_settings(catalog={"instances": {"m5.large": {"cores": 2}}})
    assert Settings().catalog == CatalogSettings()


def test_what_if_takes_the_larger_of_the_cpu_and_memory_shares() -> None:
    box = shipped_catalog().instance("m5.large")  # 2 vCPU, 8 GiB, 0.096 / 0.038 / 0.060
    cpu_bound = Usage(wall_seconds=3600, cpu_seconds=3600, peak_memory_bytes=1 * GB)
    memory_bound = Usage(wall_seconds=7200, cpu_seconds=60, peak_memory_bytes=4 * GB)
    result = what_if([cpu_bound, memory_bound], box)
    # half of the machine's CPU for an hour, then half its memory for two hours
    assert result.instance_hours == pytest.approx(0.5 + 1.0)
    assert result.on_demand == pytest.approx(1.5 * 0.096)
    assert result.spot == pytest.approx(1.5 * 0.038)
    assert result.reserved == pytest.approx(1.5 * 0.060)
    assert result.spot_saving == pytest.approx(1 - 0.038 / 0.096)
    assert result.runs == 2 and result.too_big == 0
    too_big = what_if([Usage(wall_seconds=1, cpu_seconds=1, peak_memory_bytes=9 * GB)], box)
    assert too_big.too_big == 1
    assert what_if([], box).spot_saving == 0.0
