"""The ``orchestration:`` block and the Airflow DAG written from it: every mistake in the block
names its line and field, and whatever text a spec holds reaches the DAG file as data only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.errors import SpecError
from mlship.orchestrate.airflow_dag import (
    DagPlan,
    ExportError,
    existing_dag_id,
    render,
    write_dag,
)
from mlship.spec import parse_spec
from mlship.spec.orchestration import Orchestration, check_cron
from tests.unit.test_spec import GOOD


def _plan(**changes: object) -> DagPlan:
    fields: dict[str, object] = {
        "dag_id": "mlship_churn",
        "model": "churn",
        "description": "Who leaves next month.",
        "spec": Path("/project/pipeline.yaml"),
        "mlship": Path("/venv/bin/mlship"),
        "home": Path("/project/.mlship"),
        "directory": Path("/project"),
        "bundles": Path("/project/bundles"),
        "gate": False,
        "orchestration": Orchestration(),
    }
    fields.update(changes)
    return DagPlan(**fields)  # type: ignore[arg-type]


def _statements(text: str) -> tuple[list[str], object]:
    """The file's top-level statements, with PIPELINE's value apart (its literal's value)."""
    shape, pipeline = [], None
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "PIPELINE":
            pipeline = ast.literal_eval(node.value)
            shape.append("PIPELINE = ...")
        else:
            shape.append(ast.dump(node))
    return shape, pipeline


BENIGN, _ = _statements(render(_plan()))
# Characters that end a string or a line, start a comment, a template or an expansion, often.
BREAKING = st.sampled_from(list("'\"\\\n\r{}$#;()`%"))
ANY_TEXT = st.text(st.one_of(BREAKING, st.characters()), max_size=40)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    owner=ANY_TEXT.filter(lambda t: 0 < len(t) <= 100),
    tags=st.lists(
        st.text(st.one_of(BREAKING, st.characters()), min_size=1, max_size=30).filter(
            lambda t: t.isprintable()
        ),
        max_size=3,
    ),
    description=ANY_TEXT,
    path=ANY_TEXT,
)
def test_any_text_of_the_spec_is_data_in_the_dag_file(
    owner: str, tags: list[str], description: str, path: str
) -> None:
    orchestration = Orchestration(owner=owner, tags=tags, schedule=None)
    plan = _plan(
        description=description,
        spec=Path("/p") / (path or "x"),
        home=Path("/h") / (path or "x"),
        orchestration=orchestration,
    )
    shape, pipeline = _statements(render(plan))
    assert shape == BENIGN  # the same program, statement for statement
    assert pipeline == plan.literal()


def test_the_literal_holds_the_orchestration_in_airflows_units() -> None:
    orchestration = Orchestration(
        schedule="@weekly", retries=4, retry_delay="90s", timeout="2h", run_timeout="1d",
        owner="data-team", tags=["churn", "mlship"],
    )  # fmt: skip
    literal = _plan(orchestration=orchestration, gate=True).literal()
    assert literal["schedule"] == "@weekly"
    assert (literal["retries"], literal["retry_delay_seconds"]) == (4, 90.0)
    assert (literal["timeout_seconds"], literal["run_timeout_seconds"]) == (7200.0, 86400.0)
    assert literal["tags"] == ["mlship", "churn"] and literal["gate"] is True
    assert _plan(gate=True).task_ids == ("validate", "train", "gate", "package")
    assert _plan().task_ids == ("validate", "train", "package")
    assert _plan(dag_id="mlship_churn-v2.b").file_name == "mlship_churn_v2_b.py"


@pytest.mark.parametrize(
    "expression",
    ["0 2 * * *", "*/15 * * * *", "30 2 * * 1-5", "0 0 1 jan,jul *", "5 4 * * sun", "0 0 L * *"],
)
def test_cron_expressions_a_scheduler_takes(expression: str) -> None:
    if expression.endswith("L * *"):  # not standard cron: refused here rather than by Airflow
        with pytest.raises(ValueError, match="day of month 'L' is not 1-31"):
            check_cron(expression)
        return
    check_cron(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute '61' is not 0-59"),
        ("0 24 * * *", "hour '24' is not 0-23"),
        ("0 0 0 * *", "day of month '0' is not 1-31"),
        ("0 0 * 13 *", "month '13' is not 1-12 or jan-dec"),
        ("0 0 * * 8", "day of week '8' is not 0-7 or sun-sat"),
        ("0 0 * * 5-1", "day of week '5-1': the range runs backwards"),
        ("*/0 * * * *", "minute '*/0': a step of 0"),
        ("0 0 * *", "has 4 field(s)"),
        ("0 0 ? * *", "day of month '?': expected *, N, N-M"),
    ],
)
def test_cron_mistakes_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_cron(expression)


BLOCK_LINE = GOOD.count("\n") + 2  # the line after `orchestration:` appended to GOOD


def _spec_error(block: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(GOOD + block, Path("/project/pipeline.yaml"))
    return str(info.value)


def test_mistakes_in_the_block_name_line_and_field() -> None:
    message = _spec_error("orchestration:\n  schedule: 0 25 * * *\n")
    assert f"/project/pipeline.yaml, line {BLOCK_LINE}, field orchestration.schedule:" in message
    assert "hour '25' is not 0-23" in message
    message = _spec_error("orchestration:\n  schedule: '@fortnightly'\n")
    assert "'@fortnightly' is not a preset; expected one of @hourly, @daily" in message
    message = _spec_error("orchestration:\n  retry_delay: 5 minutes\n")
    assert f"line {BLOCK_LINE}, field orchestration.retry_delay:" in message
    assert "'5 minutes' is not a duration" in message
    message = _spec_error("orchestration:\n  timeout: 0s\n")
    assert "'0s' is not a duration: expected a whole number and a unit above 0" in message
    message = _spec_error('orchestration:\n  tags: ["a\\tb"]\n')
    assert "without control characters" in message
    message = _spec_error("orchestration:\n  retries: -1\n")
    assert "field orchestration.retries:" in message
    message = _spec_error("orchestration:\n  sla: 1h\n")
    assert "field orchestration.sla: unknown field" in message


def test_the_schedule_is_not_part_of_what_a_run_does() -> None:
    plain = parse_spec(GOOD, Path("/project/pipeline.yaml"))
    scheduled = parse_spec(
        GOOD + "orchestration: {schedule: '@hourly', retries: 5}\n", Path("/project/pipeline.yaml")
    )
    assert scheduled.spec.orchestration.schedule == "@hourly"
    assert plain.spec.orchestration.schedule == "@daily"  # the default
    assert scheduled.spec_hash == plain.spec_hash


def test_a_dag_file_replaces_its_own_dag_and_nothing_else(tmp_path: Path) -> None:
    path = write_dag(_plan(), tmp_path)
    assert path == tmp_path / "mlship_churn.py" and existing_dag_id(path) == "mlship_churn"
    later = _plan(orchestration=Orchestration(schedule="@hourly"))
    write_dag(later, tmp_path)  # a re-export after the spec changed
    assert "'schedule': '@hourly'" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["mlship_churn.py"]  # no temporary left

    other = tmp_path / "mlship_churn_v2.py"
    other.write_text("# somebody's own DAG\n")
    with pytest.raises(ExportError, match="exists and is not the DAG of churn-v2; pass --force"):
        write_dag(_plan(dag_id="mlship_churn-v2", model="churn-v2"), tmp_path)
    assert other.read_text() == "# somebody's own DAG\n"
    write_dag(_plan(dag_id="mlship_churn-v2", model="churn-v2"), tmp_path, force=True)
    assert existing_dag_id(other) == "mlship_churn-v2"
    with pytest.raises(ExportError, match="is not a directory; -o takes the DAGs folder"):
        write_dag(_plan(), path)
