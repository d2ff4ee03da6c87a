"""The Jenkinsfile: a declarative pipeline with one stage per pipeline stage, in order.

Jenkins keeps a job's workspace between builds on an agent, so the virtualenv stays there (named
by the cache key, so a new Python or install line makes a new one). The secrets are Jenkins
credentials of kind "secret text" with the same ids, bound by name.
"""

from __future__ import annotations

from mlship.ci.stages import GATE_REPORT, SECRETS, VENV_DIR, Plan, Stage, stages

PATH = "Jenkinsfile"

_HEADER = """Written by `mlship ci init jenkins`: validate data -> run -> gate -> package -> build
image -> request promotion. Add the secret-text credentials MLSHIP_URL (the tracking server),
MLSHIP_TOKEN and MLSHIP_SIGNING_KEY; no value belongs in this file. The promotion runs on the
main branch only and is a request: someone else approves it with `mlship models approve`.
The image stage needs buildah and mmdebstrap on the agent (Debian: apt-get install buildah
mmdebstrap) and an agent running as root, as buildah's chroot isolation mounts."""


def _groovy(text: str) -> str:
    """``text`` inside a ''' string: a backslash is Groovy's escape there, a $ is literal."""
    return text.replace("\\", "\\\\").replace("'''", "\\'\\'\\'")


def _stage(stage: Stage, venv: str) -> str:
    lines = [f"        stage('{stage.title}') {{"]
    if stage.default_branch_only:
        lines.append("            when { branch 'main' }")
    script = list(stage.script)
    script = [f'export PATH="$WORKSPACE/{venv}/bin:$PATH"', *script]
    body = "\n".join(_groovy(line) for line in script)
    lines += ["            steps {", f"                sh '''\n{body}\n'''", "            }"]
    if stage.keeps:
        kept = ", ".join(
            path.rstrip("/") + ("/**" if path.endswith("/") else "") for path in stage.keeps
        )
        condition = "always" if stage.keep_on_failure else "success"
        lines += ["            post {", f"                {condition} {{"]
        if GATE_REPORT in stage.keeps:
            lines.append(
                f"                    junit testResults: '{GATE_REPORT}', allowEmptyResults: true"
            )
        lines += [
            f"                    archiveArtifacts artifacts: '{kept}', allowEmptyArchive: "
            f"{'true' if stage.keep_on_failure else 'false'}, fingerprint: true",
            "                }",
            "            }",
        ]
    lines.append("        }")
    return "\n".join(lines)


def render(plan: Plan) -> str:
    """The Jenkinsfile's text."""
    venv = f"{VENV_DIR}-{plan.cache_key}"
    setup = "\n".join(_groovy(line.replace(VENV_DIR, venv)) for line in plan.venv_setup)
    ordered = stages(plan)
    environment = "\n".join(f"        {name} = credentials('{name}')" for name in SECRETS)
    body = [_stage(stage, venv) for stage in ordered]
    # the first stage also makes the virtualenv the later ones use
    body[0] = body[0].replace(
        "            steps {\n", f"            steps {{\n                sh '''\n{setup}\n'''\n", 1
    )
    comments = "".join(f"// {line}".rstrip() + "\n" for line in _HEADER.splitlines())
    return (
        f"{comments}\n"
        "pipeline {\n"
        "    agent any\n"
        "    options {\n"
        "        disableConcurrentBuilds()\n"
        "    }\n"
        "    environment {\n"
        f"{environment}\n"
        '        PIPELINE_URL = "${env.BUILD_URL}"\n'
        "    }\n"
        "    stages {\n" + "\n".join(body) + "\n    }\n}\n"
    )
