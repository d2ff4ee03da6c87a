"""``mlship image build``: a bundle's image built with buildah from a Debian base made here, run
with ``buildah run``, serving the registry model's predictions as an unprivileged user.

Needs buildah and mmdebstrap (scripts/services.sh installs them) and root, as buildah's chroot
isolation does; without them the tests that build fail, naming what is missing (CI has them, so
a skip would only hide a broken image). The base's root filesystem is cached in a fixed
directory, so only the first run pays for mmdebstrap. The pinned wheels come from pip's cache (or
the package index) at packaging time; the image build itself installs with no index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlship.package.manifests import STATE, UID, WORKDIR
from mlship.package.sbom import SBOM_FILE
from mlship.registry.refs import resolve_version
from mlship.workspace import Workspace
from tests.conftest import run_cli
from tests.serving import RECORD, serving

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlship" / "test-images"
TAG = "localhost/mlship-test-churn:1"


@pytest.fixture(scope="module")
def image_tools() -> None:
    """Fail, never skip, on a machine that cannot build: a skipped image test would let a
    broken image pass the suite."""
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    problems = [f"{', '.join(missing)} not on the PATH"] if missing else []
    if os.geteuid() != 0:
        problems.append("not running as root (buildah's chroot isolation needs it)")
    if problems:
        pytest.fail(
            "the image tests cannot build: "
            + "; ".join(problems)
            + ". Run scripts/services.sh (it installs buildah and mmdebstrap) and the tests as "
            "root, as CI does",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def bundle(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image") / "churn-bundle"
    result = run_cli("package", "churn:1", "-o", str(out), "--wheels", home=trained.settings.home)
    assert "mlship image build" in result.stdout
    return out


@pytest.fixture(scope="module")
def built(image_tools: None, bundle: Path, trained: Workspace) -> Iterator[str]:
    result = run_cli(
        "image", "build", str(bundle), "--tag", TAG, "--cache", str(CACHE),
        home=trained.settings.home,
    )  # fmt: skip
    print(result.stdout)  # the build time and size, for the record
    assert f"Built {TAG} from localhost/mlship-base:bookworm-" in result.stdout
    assert f"runs as user {UID}." in result.stdout
    yield result.stdout
    subprocess.run(["buildah", "rmi", "--force", TAG], capture_output=True, check=False)


@pytest.fixture
def container(built: str) -> Iterator[str]:
    name = subprocess.run(
        ["buildah", "from", TAG], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def _in(container: str, *command: str) -> str:
    done = subprocess.run(
        ["buildah", "run", "--isolation", "chroot", container, "--", *command],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_image_runs_as_an_unprivileged_user_from_its_own_wheels(container: str) -> None:
    assert _in(container, "id", "-u").strip() == str(UID)
    assert _in(container, "sh", "-c", f"test -w {STATE} && ! test -w {WORKDIR} && echo ok") == (
        "ok\n"
    )
    # What serving reads is there, the Kubernetes manifests are not.
    listed = _in(container, "ls", WORKDIR).split()
    assert {"model.pkl", "mlship-bundle.json", "deployment.yaml", SBOM_FILE} <= set(listed)
    assert "kubernetes.yaml" not in listed
    frozen = _in(container, "pip", "list", "--format=json")
    installed = {p["name"].lower() for p in json.loads(frozen)}
    assert {"mlship", "scikit-learn", "fastapi"} <= installed
    assert not installed & {"sqlalchemy", "optuna", "ray", "polars"}


def test_buildah_run_serves_the_registry_models_predictions(
    container: str, trained: Workspace, tmp_path: Path
) -> None:
    key = trained.signing_key.decode()
    program = [
        "buildah", "run", "--isolation", "chroot", "-e", f"MLSHIP_SIGNING_KEY={key}",
        container, "--", "mlship",
    ]  # fmt: skip
    records = [
        {**RECORD, "age": 19 + 9 * i, "tenure_months": 2 + 4 * i, "support_calls": i % 5}
        for i in range(12)
    ]
    with serving(WORKDIR, tmp_path, program=program) as server:
        answer = httpx.post(f"{server.base}/predict", json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"]) == ("churn", 1)
    model = trained.load_model(resolve_version(trained, "churn:1"))
    labels, probabilities = model.predict(model.prepare(pd.DataFrame(records), "records"))
    assert probabilities is not None
    assert body["predictions"] == [str(label) for label in labels]
    served = [[row[str(c)] for c in model.signature.classes or []] for row in body["probabilities"]]
    np.testing.assert_allclose(served, probabilities, rtol=0, atol=1e-12)


def test_the_bundle_carries_a_valid_cyclonedx_sbom_of_its_pins(bundle: Path) -> None:
    text = (bundle / SBOM_FILE).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["metadata"]["component"]["type"] == "machine-learning-model"
    listed = {(c["name"].lower(), c["version"]) for c in document["components"]}
    pinned = {
        tuple(line.lower().split("==")) for line in (bundle / "requirements.txt").read_text()
        .splitlines() if "==" in line
    }  # fmt: skip
    assert pinned <= listed
    hashed = [c for c in document["components"] if c.get("hashes")]
    assert len(hashed) == len(list((bundle / "wheels").glob("*.whl")))
    manifest = json.loads((bundle / "mlship-bundle.json").read_text())
    assert SBOM_FILE in manifest["files"]


def test_a_bundle_without_its_wheels_is_refused_before_any_build(
    trained: Workspace, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    run_cli("package", "churn:1", "-o", str(plain), home=trained.settings.home)
    refused = run_cli("image", "build", str(plain), home=trained.settings.home, check=False)
    assert refused.returncode == 1
    assert "does not carry the wheels" in refused.stderr
    assert "mlship package churn:1 -o NEW_DIR --wheels" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_without_buildah_the_command_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # the interpreter is run by its full path; no buildah on PATH
    refused = run_cli(
        "image", "base", "--cache", str(tmp_path), home=tmp_path, env=env, check=False
    )
    assert refused.returncode == 1
    assert "buildah is not installed" in refused.stderr
    assert "apt-get install -y buildah mmdebstrap" in refused.stderr
    assert "Traceback" not in refused.stderr
