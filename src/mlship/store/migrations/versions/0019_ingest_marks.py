"""ingest marks: where the sources of an incremental pipeline were read up to

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 11:00:00

One row per pipeline: the high-water mark of each of its growing sources, the dataset that holds
every row read so far, and a counter of moves so that two ingests cannot both move it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_marks",
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("marks", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("pipeline"),
    )


def downgrade() -> None:
    op.drop_table("ingest_marks")
