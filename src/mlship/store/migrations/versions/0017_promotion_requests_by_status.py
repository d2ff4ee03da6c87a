"""promotion requests indexed by status, for the list of open requests

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 07:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_promotion_requests_status_id", "promotion_requests", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_promotion_requests_status_id", table_name="promotion_requests")
