"""The GitHub Actions workflow: one job per stage, each needing the one before.

Jobs hand files on as workflow artifacts (the candidate version, the bundle), the virtualenv comes
back from the Actions cache, and the secrets are read from the repository's secrets by name.
"""

from __future__ import annotations

from typing import Any

from mlship.ci.stages import (
    BUILD_IMAGE,
    IMAGE_CACHE,
    SECRETS,
    VENV_DIR,
    Plan,
    Stage,
    providers,
    stages,
)
from mlship.ci.yamltext import dump

PATH = ".github/workflows/mlship.yml"

_HEADER = """Written by `mlship ci init github`: validate data -> run -> gate -> package -> build
image -> request promotion. Set the repository secrets MLSHIP_URL (the tracking server),
MLSHIP_TOKEN and MLSHIP_SIGNING_KEY; no value belongs in this file. The promotion is a request:
someone else approves it with `mlship models approve`. The image is built with buildah (on
the runner) and mmdebstrap (installed by the job), as root."""

_DEFAULT_BRANCH = "github.ref_name == github.event.repository.default_branch"


def _artifact(stage: Stage) -> str:
    return f"mlship-{stage.key}"


def _image_tools(plan: Plan) -> list[dict[str, Any]]:
    """Steps before an image build: the cached Debian base back, and mmdebstrap with Debian's
    keys (the Ubuntu runner has buildah, and trusts only Ubuntu's archive)."""
    return [
        {
            "name": "Restore the Debian base",
            "uses": "actions/cache@v4",
            "with": {"path": IMAGE_CACHE, "key": plan.image_cache_key},
        },
        {
            "name": "Install mmdebstrap",
            "run": "sudo apt-get update -q\n"
            "sudo apt-get install -y -q mmdebstrap debian-archive-keyring",
        },
    ]


def _as_root(line: str) -> str:
    """``line`` run as root when it builds an image (buildah's chroot isolation mounts), with
    the virtualenv's mlship, which sudo's own PATH would not find."""
    if not line.startswith(BUILD_IMAGE + " "):
        return line
    return 'sudo "$(command -v mlship)" ' + line.removeprefix("mlship ")


def _job(stage: Stage, earlier: tuple[Stage, ...], plan: Plan) -> dict[str, Any]:
    """The job of ``stage``, after the ``earlier`` ones (it downloads what they kept)."""
    steps: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": plan.python}},
        {
            "name": "Restore the virtualenv",
            "uses": "actions/cache@v4",
            "with": {"path": VENV_DIR, "key": f"{plan.cache_key}-${{{{ runner.os }}}}"},
        },
        {
            "name": "Install mlship",
            "run": "\n".join(plan.venv_setup) + f'\necho "$PWD/{VENV_DIR}/bin" >> "$GITHUB_PATH"',
        },
    ]
    for source in providers(stage, earlier):
        steps.append({"uses": "actions/download-artifact@v4", "with": {"name": _artifact(source)}})
    script = stage.script
    if stage.builds_image:
        steps += _image_tools(plan)
        script = tuple(_as_root(line) for line in script)
    steps.append({"name": stage.title, "run": "\n".join(script)})
    if stage.keeps:
        upload: dict[str, Any] = {
            "uses": "actions/upload-artifact@v4",
            "with": {"name": _artifact(stage), "path": "\n".join(stage.keeps)},
        }
        if stage.keep_on_failure:
            upload = {"if": "always()", **upload}
        steps.append(upload)
    job: dict[str, Any] = {"name": stage.title, "runs-on": "ubuntu-latest"}
    if earlier:
        job["needs"] = earlier[-1].key
    if stage.default_branch_only:
        job["if"] = _DEFAULT_BRANCH
    if not stage.builds_image:  # the image build reads the bundle only: no secret under sudo
        job["env"] = {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS}
        job["env"]["PIPELINE_URL"] = (
            "${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}"
        )
    job["steps"] = steps
    return job


def render(plan: Plan) -> str:
    """The workflow file's text."""
    ordered = stages(plan)
    jobs: dict[str, Any] = {}
    for index, stage in enumerate(ordered):
        jobs[stage.key] = _job(stage, ordered[:index], plan)
    document = {
        "name": f"mlship {plan.model}",
        "on": ["push", "pull_request", "workflow_dispatch"],
        "permissions": {"contents": "read"},
        "concurrency": {"group": "mlship-${{ github.ref }}", "cancel-in-progress": False},
        "jobs": jobs,
    }
    return dump(_HEADER, document)
