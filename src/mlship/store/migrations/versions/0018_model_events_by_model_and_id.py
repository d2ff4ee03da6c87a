"""a model's history read in order from one index, on every database

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:20:00

A model's history is read newest first (``WHERE model_id = ? ORDER BY id DESC LIMIT ?``). On
SQLite the index on ``model_id`` ends with the rowid, which is ``id``, so it already holds that
order; on PostgreSQL it does not, and a model with many events was sorted on every page. The
index on ``(model_id, id)`` holds the order on both, and replaces the one on ``model_id``, which
it covers.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_model_events_model_id_id", "model_events", ["model_id", "id"])
    op.drop_index("ix_model_events_model_id", table_name="model_events")


def downgrade() -> None:
    op.create_index("ix_model_events_model_id", "model_events", ["model_id"])
    op.drop_index("ix_model_events_model_id_id", table_name="model_events")
