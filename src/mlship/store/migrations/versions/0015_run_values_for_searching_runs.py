"""params and metrics of finished runs one row each (run_values), and runs indexed by start

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:00:00

Runs finished before this revision get their rows here, from the selected candidate's params
and the metrics rows, read and written in batches so a large store is not held in memory.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

# The rule finish_run writes by; a later change to it must ship its own migration to refill.
from mlship.store.run_search import run_values

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BATCH = 500

_runs = sa.table("runs", sa.column("id", sa.String), sa.column("status", sa.String),
                 sa.column("best_candidate", sa.String))  # fmt: skip
_candidates = sa.table("candidates", sa.column("run_id", sa.String), sa.column("name", sa.String),
                       sa.column("params", sa.JSON), sa.column("selected", sa.Boolean))  # fmt: skip
_metrics = sa.table("metrics", sa.column("id", sa.Integer), sa.column("run_id", sa.String),
                    sa.column("candidate", sa.String), sa.column("split", sa.String),
                    sa.column("name", sa.String), sa.column("value", sa.Float))  # fmt: skip


def upgrade() -> None:
    values = op.create_table(
        "run_values",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Float(), nullable=True),
        sa.Column("text", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "kind", "key"),
    )
    op.create_index("ix_run_values_number", "run_values", ["kind", "key", "number"])
    op.create_index("ix_run_values_text", "run_values", ["kind", "key", "text"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    _fill(op.get_bind(), values)


def _fill(connection: sa.Connection, values: sa.Table) -> None:
    """Rows for every run that has results, a batch of runs at a time."""
    after = ""
    while True:
        batch = connection.execute(
            sa.select(_runs.c.id, _runs.c.best_candidate)
            .where(_runs.c.id > after, _runs.c.best_candidate.is_not(None))
            .order_by(_runs.c.id)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        after = batch[-1].id
        best = {row.id: row.best_candidate for row in batch}
        params: dict[str, dict[str, Any]] = {}
        for row in connection.execute(sa.select(_candidates).where(_candidates.c.run_id.in_(best))):
            if row.selected or (row.name == best[row.run_id] and row.run_id not in params):
                params[row.run_id] = row.params or {}
        scores: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
        for row in connection.execute(
            sa.select(_metrics).where(_metrics.c.run_id.in_(best)).order_by(_metrics.c.id)
        ):
            if row.candidate in (None, best[row.run_id]):
                scores[row.run_id].append((row.split, row.name, row.value))
        rows = [
            {"run_id": run_id, "kind": v.kind, "key": v.key, "number": v.number, "text": v.text}
            for run_id in best
            for v in run_values(params.get(run_id, {}), scores[run_id])
        ]
        if rows:
            connection.execute(values.insert(), rows)


def downgrade() -> None:
    op.drop_index("ix_runs_started_at", table_name="runs")
    op.drop_index("ix_run_values_text", table_name="run_values")
    op.drop_index("ix_run_values_number", table_name="run_values")
    op.drop_table("run_values")
