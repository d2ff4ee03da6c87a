"""registry: stages, tags and descriptions, the change history, promotion requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 23:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stage", sa.String(length=20), server_default="none", nullable=False)
        )
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="{}", nullable=False))
    op.create_table(
        "model_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_stage", sa.String(length=20), nullable=True),
        sa.Column("to_stage", sa.String(length=20), nullable=True),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_model_events_model_id", "model_events", ["model_id"])
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_promotion_requests_model_id", "promotion_requests", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_promotion_requests_model_id", table_name="promotion_requests")
    op.drop_table("promotion_requests")
    op.drop_index("ix_model_events_model_id", table_name="model_events")
    op.drop_table("model_events")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        for name in ("tags", "description", "stage"):
            batch_op.drop_column(name)
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        for name in ("tags", "description"):
            batch_op.drop_column(name)
