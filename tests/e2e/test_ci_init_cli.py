"""``mlship ci init``: the files it writes validate, their commands run as written against a real
workspace, and its refusals name what is wrong."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import invoke_cli, mlship_env
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
        'mlship gate "$(cat candidate.txt)" --against churn@production --junit gate.xml'
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


def test_the_gitlab_jobs_commands_run_as_written(tmp_path: Path) -> None:
    """The validate, run, package and promote jobs' scripts run in a shell, in order, in the
    repository's root, with ``mlship`` on the PATH: the version the run registered reaches the
    package and the promotion request through candidate.txt. (The image build needs a
    container builder; the gate's own tests cover ``mlship gate``.)"""
    root, spec = _project(tmp_path)
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
    for key in ("validate", "run", "package", "promote"):
        script = "set -e\n" + "\n".join(jobs[key]["script"])
        done = subprocess.run(
            ["sh", "-c", script], cwd=root, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{key}:\n{done.stdout}\n{done.stderr}"
    assert (root / "candidate.txt").read_text() == "churn:1\n"
    assert (root / "bundle" / "Dockerfile").is_file()
    history = invoke_cli("models", "history", "churn", home=home)
    assert "https://ci.example/pipelines/7" in history.stdout
