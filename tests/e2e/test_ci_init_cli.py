"""``mlship ci init``: the files it writes validate, their commands run as written against a real
workspace, and its refusals name what is wrong."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import invoke_cli, mlship_env
from tests.e2e.test_image_cli import CACHE
from tests.pipelines import jenkinsfile_stages, schema_errors
from tests.quick_project import fast_churn


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    spec = fast_churn(root / "models")
    return root, spec


def test_init_writes_each_system_where_it_looks(tmp_path: Path) -> None:
    root, spec = _project(tmp_path)
    home = tmp_path / "home"
    for system, where in (
        ("github", ".github/workflows/mlship.yml"),
        ("gitlab", ".gitlab-ci.yml"),
        ("jenkins", "Jenkinsfile"),
    ):
        done = invoke_cli(
            "ci", "init", system, "--spec", str(spec), "--out", str(root), "--install", "mlship",
            home=home,
        )  # fmt: skip
        assert f"Wrote {root / where}: churn from models/pipeline.yaml" in done.stdout
        assert "MLSHIP_URL, MLSHIP_TOKEN and MLSHIP_SIGNING_KEY" in done.stdout
    assert schema_errors("github", root / ".github/workflows/mlship.yml") is None
    assert schema_errors("gitlab", root / ".gitlab-ci.yml") is None
    assert jenkinsfile_stages((root / "Jenkinsfile").read_text())[0] == "Validate data"
    gitlab = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    assert gitlab["validate"]["script"] == ["mlship data validate models/pipeline.yaml"]
    assert gitlab["gate"]["script"] == [
        'mlship gate "$(cat candidate.txt)" --against churn@production --junit gate.xml '
        "--markdown gate.md"
    ]


def test_init_refuses_to_overwrite_and_names_what_is_wrong(tmp_path: Path) -> None:
    root, spec = _project(tmp_path)
    home = tmp_path / "home"
    common = ("--spec", str(spec), "--out", str(root))
    invoke_cli("ci", "init", "gitlab", *common, home=home)
    (root / ".gitlab-ci.yml").write_text("# edited by hand\n")
    again = invoke_cli("ci", "init", "gitlab", *common, home=home, check=False)
    assert again.returncode == 1
    assert f"error: {root / '.gitlab-ci.yml'} exists; pass --force to replace it" in again.stderr
    assert (root / ".gitlab-ci.yml").read_text() == "# edited by hand\n"
    invoke_cli("ci", "init", "gitlab", *common, "--force", home=home)
    assert schema_errors("gitlab", root / ".gitlab-ci.yml") is None

    unknown = invoke_cli("ci", "init", "circleci", *common, home=home, check=False)
    assert unknown.returncode == 1
    assert "unknown CI system 'circleci'; expected one of github, gitlab, jenkins" in (
        unknown.stderr
    )
    missing = invoke_cli(
        "ci", "init", "github", "--spec", str(root / "nope.yaml"), "--out", str(root),
        home=home, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "nope.yaml not found; pass --spec" in missing.stderr
    outside = invoke_cli(
        "ci", "init", "github", "--spec", str(spec), "--out", str(root / "models" / "sub"),
        home=home, check=False,
    )  # fmt: skip
    assert "is outside" in outside.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr + outside.stderr


def test_a_python_the_image_base_lacks_is_refused(tmp_path: Path) -> None:
    root, spec = _project(tmp_path)
    refused = invoke_cli(
        "ci", "init", "github", "--spec", str(spec), "--out", str(root), "--python", "3.12",
        home=tmp_path / "home", check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert (
        "error: --python 3.12: the image stage builds from Debian bookworm, whose Python is "
        "3.11, and the bundle's wheels must be for the image's Python; pass --python 3.11"
    ) in " ".join(refused.stderr.split())
    assert not (root / ".github").exists()


def _shell(script: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", "set -e\n" + "\n".join(script)], cwd=root, env=env, capture_output=True,
        text=True, timeout=900, check=False,
    )  # fmt: skip


def test_the_gitlab_jobs_commands_run_as_written(tmp_path: Path) -> None:
    """Every job's script runs in a shell, in order, in the repository's root, with ``mlship`` on
    the PATH (the image job without its two apt-get lines: this machine has buildah and
    mmdebstrap from scripts/services.sh). The version the run registered reaches the gate, the
    package, the image and the promotion request through candidate.txt; the gate judges it
    against the version in production (an earlier run of the same spec, promoted by hand as a
    first version is) and keeps its reports; the image is built with buildah."""
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    assert not missing and os.geteuid() == 0, (
        f"the image job needs buildah and mmdebstrap (missing: {missing}) and root: run "
        "scripts/services.sh and the tests as root, as CI does"
    )
    root, spec = _project(tmp_path)
    # Two runs of one spec give the same model: not worse than production, within 0.05.
    spec.write_text(spec.read_text() + "gate:\n  require: not_worse\n  max_loss: 0.05\n")
    home = tmp_path / "home"
    invoke_cli("ci", "init", "gitlab", "--spec", str(spec), "--out", str(root), home=home)
    jobs = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "mlship"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mlship "$@"\n')
    shim.chmod(0o755)
    env = mlship_env(
        home,
        {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join(sys.path),
            "PIPELINE_URL": "https://ci.example/pipelines/7",
            "MLSHIP_USER": "ci",
        },
    )
    first = _shell(jobs["run"]["script"], root, env)
    assert first.returncode == 0, first.stderr
    invoke_cli("models", "promote", "churn:1", "--to", "production", home=home)
    invoke_cli("models", "approve", "churn:1", home=home, env={"MLSHIP_USER": "bob"})
    # The base's root filesystem the image tests cached, so mmdebstrap runs once per machine.
    CACHE.mkdir(parents=True, exist_ok=True)
    (root / ".mlship-images").symlink_to(CACHE, target_is_directory=True)
    for key in ("validate", "run", "gate", "package", "build-image", "promote"):
        script = [line for line in jobs[key]["script"] if not line.startswith("apt-get ")]
        done = _shell(script, root, env)
        assert done.returncode == 0, f"{key}:\n{done.stdout}\n{done.stderr}"
        if key == "gate":
            assert "PASS: churn:2 against churn:1" in " ".join(done.stdout.split())
        if key == "build-image":
            assert "Built localhost/mlship-churn:2 from localhost/mlship-base:" in done.stdout
            subprocess.run(
                ["buildah", "rmi", "--force", "localhost/mlship-churn:2"],
                capture_output=True, check=False,
            )  # fmt: skip
    assert (root / "candidate.txt").read_text() == "churn:2\n"
    assert (root / "gate.xml").is_file()
    assert (root / "gate.md").read_text().startswith("### Gate passed: `churn:2` against `churn:1`")
    assert (root / "bundle" / "wheels").is_dir()
    history = invoke_cli("models", "history", "churn", home=home)
    assert "https://ci.example/pipelines/7" in history.stdout
