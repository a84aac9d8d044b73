"""Pending outbox rows indexed by target, then log order: claiming is fair per target.

The claim now scans each target's pending rows separately (a burst of inbound
deliveries no longer starves the bot's webhook rows created after it); with the target
first in the partial index, each scan follows `seq` within its target and stops at the
limit, instead of stepping over every pending row of the other targets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending_target",
        "outbox",
        ["target", "seq"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.drop_index("ix_outbox_pending", table_name="outbox")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_pending", "outbox", ["seq"], sqlite_where=PENDING, postgresql_where=PENDING
    )
    op.drop_index("ix_outbox_pending_target", table_name="outbox")
