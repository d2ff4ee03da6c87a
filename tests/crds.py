"""The custom resource schemas KEDA and Knative publish, for validating the manifests mlship
writes for them (``kubernetes-validate`` knows only Kubernetes' own kinds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

CRDS = Path(__file__).parent / "fixtures" / "crds"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD's schema with unknown fields refused, as the API server prunes them: an object
    with listed properties and no ``x-kubernetes-preserve-unknown-fields`` takes nothing else."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    return out


def validate_custom(document: dict[str, Any], fixture: str) -> None:
    """Validate a custom resource against the schema its project publishes in its CRD (vendored
    in tests/fixtures/crds with the release and address it came from)."""
    crd = json.loads((CRDS / fixture).read_text())
    assert (document["apiVersion"], document["kind"]) == (crd["apiVersion"], crd["kind"])
    jsonschema.validate(document, _strict(crd["openAPIV3Schema"]))


KEDA = "keda-v2.20.2-scaledobject.json"
KNATIVE = "knative-serving-v1.23.0-service.json"
