"""A partial index of pending outbox rows in log order, for claiming.

The claim takes the oldest due rows that head their lane; walking this index in `seq`
order it stops after `limit` of them, where the `(status, next_attempt_at)` index made
it probe every pending row and sort them: a backlog slowed its own draining. That index
goes (SQLite's planner kept preferring it); the pending count and the next-due query
use the new one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending", "outbox", ["seq"], sqlite_where=PENDING, postgresql_where=PENDING
    )
    op.drop_index("ix_outbox_status_next_attempt_at", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.drop_index("ix_outbox_pending", table_name="outbox")
