"""datasets indexed by creation, runs by their dataset (the dataset pages' lists)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 07:30:00

The datasets list reads a page newest first, and a dataset's page the runs that trained on it:
both read an index instead of every row.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_datasets_created_at", "datasets", ["created_at"])
    op.create_index("ix_runs_dataset_id", "runs", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_dataset_id", table_name="runs")
    op.drop_index("ix_datasets_created_at", table_name="datasets")
