"""run and candidate costs, tuning and the evaluation report

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cpu_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cost", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("executor", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("report_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("train_mean", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cpu_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cost", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("predict_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("trials", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("tuning", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        for name in (
            "tuning",
            "trials",
            "predict_ms",
            "cost",
            "peak_memory_bytes",
            "cpu_seconds",
            "train_mean",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        for name in (
            "details",
            "report_sha256",
            "attempts",
            "executor",
            "cost",
            "peak_memory_bytes",
            "cpu_seconds",
        ):
            batch_op.drop_column(name)
