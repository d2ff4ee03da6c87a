"""alerts: the history of alert rules that held, delivered or held back by their cool-down

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("condition", sa.String(length=60), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("window", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # last_delivered(model, rule) and the history of one rule read this index newest first
    op.create_index("ix_alerts_model_rule_at", "alerts", ["model", "rule", "at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_model_rule_at", table_name="alerts")
    op.drop_table("alerts")
