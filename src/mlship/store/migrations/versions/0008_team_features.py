"""owners and tags of runs, owners of models, notes on runs and model versions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added columns only (no table rebuild, which SQLite refuses for tables that other rows
    # reference); the empty default is replaced below and never written by mlship.
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=200), server_default="", nullable=False)
        )

    # Existing rows are owned by whoever made them: the run's user, and whoever registered a
    # model's first version.
    runs = sa.table("runs", sa.column("owner", sa.String()), sa.column("user", sa.String()))
    op.execute(runs.update().values(owner=runs.c.user))
    models = sa.table("registered_models", sa.column("id", sa.Integer()), sa.column("owner"))
    versions = sa.table(
        "model_versions",
        sa.column("model_id", sa.Integer()),
        sa.column("version", sa.Integer()),
        sa.column("created_by", sa.String()),
    )
    first_author = (
        sa.select(versions.c.created_by)
        .where(versions.c.model_id == models.c.id)
        .order_by(versions.c.version)
        .limit(1)
        .scalar_subquery()
    )
    op.execute(models.update().values(owner=sa.func.coalesce(first_author, "unknown")))

    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_target", "notes", ["target_kind", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_notes_target", table_name="notes")
    op.drop_table("notes")
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.drop_column("owner")
    op.drop_index("ix_runs_owner", table_name="runs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("tags")
        batch_op.drop_column("owner")
