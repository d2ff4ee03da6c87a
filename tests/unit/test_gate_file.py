"""Gate files: whatever a user writes is either a gate or an error naming the file, never a
traceback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.errors import SpecError
from mlship.spec.gate import GateSpec, load_gate_file

KEYS = ["metric", "require", "min_improvement", "max_loss", "confidence", "resamples", "seed",
        "budgets", "other"]  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["significant", "not_worse", "accuracy", "roc_auc"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(
        st.sampled_from(["max_size_mb", "max_latency_ms", "latency_rows", "x"]),
        st.one_of(st.floats(allow_nan=False), st.integers(-5, 10**6), st.text(max_size=4)),
        max_size=3,
    ),
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(block=st.one_of(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6), VALUES))
def test_any_gate_block_loads_or_is_refused_naming_the_file(
    tmp_path_factory: pytest.TempPathFactory, block: object
) -> None:
    path = tmp_path_factory.mktemp("gate") / "gate.yaml"
    path.write_text(yaml.safe_dump({"gate": block}))
    try:
        gate = load_gate_file(path)
    except SpecError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert str(path) in refused
        return
    assert isinstance(gate, GateSpec)
    assert 0.5 < gate.confidence < 1 and gate.resamples >= 100
    assert (gate.max_loss is not None) == (gate.require == "not_worse")
    assert math.isfinite(gate.min_improvement)


@pytest.mark.parametrize("text", ["gate: [\n", "\x00", "gate: {metric: [accuracy}"])
def test_broken_yaml_is_refused_with_its_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"gate\.yaml"):
        load_gate_file(path)


def test_a_missing_gate_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"gate file .*nowhere.yaml does not exist"):
        load_gate_file(tmp_path / "nowhere.yaml")
