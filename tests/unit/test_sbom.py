"""The bundle's CycloneDX SBOM follows the published 1.6 schema for any pinned names and
versions, lists each pin once with its package URL, and hashes exactly the wheels carried."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.package.sbom import sbom, wheels_by_name

VALIDATOR = JsonStrictValidator(SchemaVersion.V1_6)

names = st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,20}[A-Za-z0-9]", fullmatch=True)
versions = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}(rc[0-9])?", fullmatch=True)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.dictionaries(names, versions, max_size=8), st.integers(min_value=1, max_value=10**6))
def test_any_pins_make_a_valid_document(pins: dict[str, str], version: int) -> None:
    lines = [f"{name}=={pinned}" for name, pinned in pins.items()]
    text = sbom("churn", version, lines, {}, mlship="1.2.3")
    assert VALIDATOR.validate_str(text) is None
    document = json.loads(text)
    assert document["metadata"]["component"]["version"] == str(version)
    refs = [c["bom-ref"] for c in document["components"]]
    assert len(refs) == len(set(refs))
    assert "pkg:pypi/mlship@1.2.3" in refs


def test_carried_wheels_are_hashed_and_a_broken_document_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "scikit_learn-1.9.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    text = sbom("churn", 3, ["scikit-learn==1.9.0", "numpy==2.4.1"], wheels_by_name(tmp_path))
    components = {c["name"]: c for c in json.loads(text)["components"]}
    digest = hashlib.sha256(b"not really a wheel").hexdigest()
    assert components["scikit-learn"]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert "hashes" not in components["numpy"]
    assert components["scikit-learn"]["purl"] == "pkg:pypi/scikit-learn@1.9.0"
    broken = text.replace('"machine-learning-model"', '"model"')
    assert VALIDATOR.validate_str(broken) is not None
