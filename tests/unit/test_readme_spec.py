"""The spec shown in the README is a valid spec, so readers can copy from it."""

from __future__ import annotations

import re
from pathlib import Path

from mlship.spec.loader import parse_spec

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_spec_parses() -> None:
    text = README.read_text()
    section = text[text.index("## The pipeline spec") :]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "the README's spec section has no yaml block"
    loaded = parse_spec(match.group(1), README.parent / "pipeline.yaml")
    spec = loaded.spec
    assert spec.source_names == ["crm", "billing", "support"]
    assert spec.combine.method == "join"
    assert any(c.transform is not None and c.transform.encode == "onehot" for c in spec.columns)
