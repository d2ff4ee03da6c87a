"""The GitLab CI file: one GitLab stage and one job per pipeline stage.

Files pass between jobs as artifacts (``needs`` brings them), the virtualenv is the cache, the
gate's JUnit report shows in the merge request, and the secrets are the project's CI/CD variables
by name.
"""

from __future__ import annotations

from typing import Any

from mlship.ci.stages import (
    GATE_REPORT,
    IMAGE_CACHE,
    VENV_DIR,
    Plan,
    Stage,
    providers,
    stages,
)
from mlship.ci.yamltext import dump

PATH = ".gitlab-ci.yml"

_HEADER = """Written by `mlship ci init gitlab`: validate data -> run -> gate -> package -> build
image -> request promotion. Define the CI/CD variables MLSHIP_URL (the tracking server),
MLSHIP_TOKEN and MLSHIP_SIGNING_KEY (masked) in the project's settings; no value belongs in this
file. The promotion is a request: someone else approves it with `mlship models approve`.
The image job installs buildah and mmdebstrap and builds as root, which needs a runner that
allows mounts (a privileged Docker executor, or a shell executor running as root)."""

_IMAGE_TOOLS = (
    "apt-get update -qq",
    "apt-get install -y -qq buildah mmdebstrap",
)
"""The image job installs its builders into the job's own (Debian) Python image: it runs as
root there, and `mlship image build` needs mlship, buildah and mmdebstrap in one place."""


def _job(stage: Stage, earlier: tuple[Stage, ...], plan: Plan) -> dict[str, Any]:
    job: dict[str, Any] = {"stage": stage.key, "extends": ".mlship"}
    script = list(stage.script)
    if stage.builds_image:
        # buildah's overlay driver cannot stack on the container's own overlay filesystem.
        job["variables"] = {"STORAGE_DRIVER": "vfs", "DEBIAN_FRONTEND": "noninteractive"}
        job["cache"] = [
            {"key": plan.cache_key, "paths": [f"{VENV_DIR}/"]},
            {"key": plan.image_cache_key, "paths": [f"{IMAGE_CACHE}/"]},
        ]
        script = [*_IMAGE_TOOLS, *script]
    # ``needs`` starts a job as soon as the jobs it names finish, whatever its stage: the one
    # just before is always named, so no job overtakes the gate.
    sources = providers(stage, earlier)
    needs: list[dict[str, Any]] = []
    if earlier and earlier[-1] not in sources:
        needs.append({"job": earlier[-1].key, "artifacts": False})
    needs += [{"job": source.key, "artifacts": True} for source in sources]
    job["needs"] = needs
    job["script"] = script
    if stage.keeps:
        artifacts: dict[str, Any] = {"paths": list(stage.keeps), "expire_in": "30 days"}
        if stage.keep_on_failure:
            artifacts["when"] = "always"
        if GATE_REPORT in stage.keeps:
            artifacts["reports"] = {"junit": GATE_REPORT}
        job["artifacts"] = artifacts
    if stage.default_branch_only:
        job["rules"] = [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    return job


def render(plan: Plan) -> str:
    """The ``.gitlab-ci.yml`` text."""
    ordered = stages(plan)
    document: dict[str, Any] = {
        "stages": [stage.key for stage in ordered],
        ".mlship": {
            "image": f"python:{plan.python}-slim",
            "variables": {"PIPELINE_URL": "$CI_PIPELINE_URL"},
            "cache": {"key": plan.cache_key, "paths": [f"{VENV_DIR}/"]},
            "before_script": [*plan.venv_setup, f'export PATH="$PWD/{VENV_DIR}/bin:$PATH"'],
        },
    }
    for index, stage in enumerate(ordered):
        document[stage.key] = _job(stage, ordered[:index], plan)
    return dump(_HEADER, document)
