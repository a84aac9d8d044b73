"""Indexes for the hot paths: the outbox head-of-line probe and relayed agent events.

`ix_outbox_undelivered` is partial (only rows not delivered yet), so claiming stays
cheap however long a handoff's delivered history grows; `ix_messages_handoff_id_
livechat_event_id` answers "was this LiveChat event relayed already?" for one handoff.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNDELIVERED = sa.text("status != 'delivered'")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["handoff_id", "target", "seq"],
        sqlite_where=UNDELIVERED,
        postgresql_where=UNDELIVERED,
    )
    op.create_index(
        "ix_messages_handoff_id_livechat_event_id",
        "messages",
        ["handoff_id", "livechat_event_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_handoff_id_livechat_event_id", table_name="messages")
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
