"""The stages of a model's pipeline, shared by every CI system's file.

A stage is the shell commands it runs, the files it takes from the stages before it and the files
it keeps as artifacts. The commands are mlship's own, so a pipeline runs what a person runs at a
terminal. The version a run registers is handed on in ``candidate.txt`` (written by ``mlship run
--version-file``): naming "the newest version" instead would pick up a version registered by
someone else between two stages.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass

from mlship.errors import MlshipError
from mlship.package.image import base_key

CANDIDATE_FILE = "candidate.txt"
GATE_REPORT = "gate.xml"
GATE_SUMMARY = "gate.md"
BUNDLE_DIR = "bundle"
VENV_DIR = ".venv"
BUILD_IMAGE = "mlship image build"
IMAGE_CACHE = ".mlship-images"
"""Where the image stage keeps the Debian base's root filesystem (cached by each system)."""
SECRETS = ("MLSHIP_URL", "MLSHIP_TOKEN", "MLSHIP_SIGNING_KEY")

# What a path may hold to be written into YAML, a shell line and a Groovy string alike without
# quoting surprises (GitHub would even evaluate a ``${{`` in a run line).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")
# The install line is pip's arguments, written unquoted so it can be several (``-r
# requirements.txt``, ``'mlship[s3]==1.4'`` unquoted): no shell or expression syntax in it.
_SAFE_INSTALL = re.compile(r"^[A-Za-z0-9._/=<>~!,:@#%+\[\] -]+$")
_PYTHON = re.compile(r"^3\.[0-9]{1,2}$")


class CiError(MlshipError):
    """A pipeline file that cannot be written as asked."""


@dataclass(frozen=True)
class Plan:
    """What the pipeline is built for: the spec (relative to the repository's root), the model
    it registers, the Python it runs on and what pip installs to get mlship."""

    spec: str
    model: str
    python: str
    install: str

    def __post_init__(self) -> None:
        if not _SAFE_PATH.fullmatch(self.spec) or self.spec.startswith("-"):
            raise CiError(
                f"spec path {self.spec!r} has characters a pipeline file cannot carry safely; "
                "expected letters, digits, '.', '_', '-' and '/' only: rename the file"
            )
        if not _SAFE_INSTALL.fullmatch(self.install) or not self.install.strip():
            raise CiError(
                f"--install {self.install!r}: expected pip arguments (package names, versions, "
                "extras, -r FILE, URLs) without quotes, $, backslashes, backticks, ;, | or &"
            )
        if not _PYTHON.fullmatch(self.python):
            raise CiError(f"--python {self.python!r}: expected a Python version such as 3.12")

    @property
    def cache_key(self) -> str:
        """A key for the cached virtualenv that changes with the Python and the install line."""
        digest = hashlib.sha256(f"{self.python}\n{self.install}".encode()).hexdigest()[:12]
        return f"mlship-venv-{digest}"

    @property
    def image_cache_key(self) -> str:
        """The key of the cached Debian base: it changes when the base's contents would."""
        return f"mlship-base-{base_key()}"

    @property
    def venv_setup(self) -> tuple[str, ...]:
        """Create the virtualenv unless the cache brought it back, then install into it."""
        return (
            f"test -x {VENV_DIR}/bin/mlship || python3 -m venv {VENV_DIR}",
            f"{VENV_DIR}/bin/python -m pip install --quiet {self.install}",
        )


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    ``key`` names it in the files (job ids), ``title`` for people; ``script`` runs with the
    virtualenv's ``bin`` first on the PATH. ``builds_image`` stages run ``mlship image build``,
    which needs buildah and mmdebstrap and root (buildah's chroot isolation mounts): each
    system's file gets them its own way. ``takes`` are files the stages before it kept;
    ``keeps`` are the files it hands on or reports, kept even when the stage fails when
    ``keep_on_failure``.
    ``default_branch_only`` stages run on the default branch only.
    """

    key: str
    title: str
    script: tuple[str, ...]
    takes: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()
    keep_on_failure: bool = False
    builds_image: bool = False
    default_branch_only: bool = False


def stages(plan: Plan) -> tuple[Stage, ...]:
    """validate data -> run -> gate -> package -> build image -> request promotion."""
    spec = shlex.quote(plan.spec)
    candidate = f'"$(cat {CANDIDATE_FILE})"'
    return (
        Stage("validate", "Validate data", (f"mlship data validate {spec}",)),
        Stage(
            "run",
            "Run",
            (f"mlship run {spec} --version-file {CANDIDATE_FILE}", f"cat {CANDIDATE_FILE}"),
            keeps=(CANDIDATE_FILE,),
        ),
        Stage(
            "gate",
            "Gate",
            (
                f"mlship gate {candidate} --against {plan.model}@production "
                f"--junit {GATE_REPORT} --markdown {GATE_SUMMARY}",
            ),
            takes=(CANDIDATE_FILE,),
            keeps=(GATE_REPORT, GATE_SUMMARY),
            keep_on_failure=True,
        ),
        Stage(
            "package",
            "Package",
            (f"mlship package {candidate} --output {BUNDLE_DIR} --wheels",),
            takes=(CANDIDATE_FILE,),
            keeps=(f"{BUNDLE_DIR}/", CANDIDATE_FILE),
        ),
        Stage(
            "build-image",
            "Build image",
            (
                f"image=\"localhost/mlship-$(tr '[:upper:]' '[:lower:]' < {CANDIDATE_FILE})\"",
                f'{BUILD_IMAGE} {BUNDLE_DIR} --tag "$image" --cache {IMAGE_CACHE}',
            ),
            takes=(f"{BUNDLE_DIR}/", CANDIDATE_FILE),
            builds_image=True,
        ),
        Stage(
            "promote",
            "Request promotion",
            (
                f"mlship models promote {candidate} --to production "
                '--reason "gate passed in pipeline $PIPELINE_URL"',
            ),
            takes=(CANDIDATE_FILE,),
            default_branch_only=True,
        ),
    )


def providers(stage: Stage, earlier: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """The earlier stages ``stage`` takes its files from: for each file, the latest one that
    kept it (the package stage keeps the candidate file again, beside the bundle)."""
    found: dict[str, Stage] = {}
    for before in earlier:
        for path in before.keeps:
            if path in stage.takes:
                found[path] = before
    missing = [path for path in stage.takes if path not in found]
    if missing:
        raise CiError(f"stage {stage.key} takes {', '.join(missing)}, which no stage before keeps")
    unique: dict[str, Stage] = {source.key: source for source in found.values()}
    return tuple(unique.values())
