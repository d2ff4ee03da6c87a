"""reviews of promotion requests (changes requested, objections), threads of notes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An added nullable column only: no rebuild of the notes table.
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to", sa.Integer(), nullable=True))
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closing_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["promotion_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reviews_model_version", "reviews", ["model_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_reviews_model_version", table_name="reviews")
    op.drop_table("reviews")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_column("reply_to")
