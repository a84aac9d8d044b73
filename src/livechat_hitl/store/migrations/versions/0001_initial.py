"""Initial schema: handoffs, transitions, messages, events, outbox, dedup keys, identities.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("open_conversation_id", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("user", sa.JSON(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("agent", sa.JSON(), nullable=True),
        sa.Column("queue", sa.JSON(), nullable=True),
        sa.Column("close_reason", sa.String(32), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("chat_id", sa.String(64), nullable=True),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
        sa.UniqueConstraint("open_conversation_id", name="uq_handoffs_open_conversation_id"),
    )
    op.create_index("ix_handoffs_chat_id", "handoffs", ["chat_id"])
    op.create_index("ix_handoffs_conversation_id", "handoffs", ["conversation_id"])
    op.create_index("ix_handoffs_created_at_id", "handoffs", ["created_at", "id"])
    op.create_index("ix_handoffs_state", "handoffs", ["state"])

    op.create_table(
        "transitions",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(255), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_transitions"),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name="fk_transitions_handoff_id_handoffs"
        ),
    )
    op.create_index("ix_transitions_handoff_id", "transitions", ["handoff_id"])

    op.create_table(
        "messages",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("elements", sa.JSON(), nullable=True),
        sa.Column("client_message_id", sa.String(255), nullable=True),
        sa.Column("author_id", sa.String(255), nullable=True),
        sa.Column("livechat_event_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_messages"),
        sa.UniqueConstraint("id", name="uq_messages_id"),
        sa.UniqueConstraint(
            "handoff_id", "client_message_id", name="uq_messages_handoff_id_client_message_id"
        ),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name="fk_messages_handoff_id_handoffs"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_messages_handoff_id_seq", "messages", ["handoff_id", "seq"])

    op.create_table(
        "events",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name="fk_events_handoff_id_handoffs"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_handoff_id", "events", ["handoff_id"])

    op.create_table(
        "outbox",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("id", name="uq_outbox_id"),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name="fk_outbox_handoff_id_handoffs"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_handoff_id_target_seq", "outbox", ["handoff_id", "target", "seq"])

    op.create_table(
        "dedup_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_dedup_keys"),
    )

    op.create_table(
        "identities",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("cookies", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_identities"),
    )


def downgrade() -> None:
    op.drop_table("identities")
    op.drop_table("dedup_keys")
    op.drop_index("ix_outbox_handoff_id_target_seq", table_name="outbox")
    op.drop_index("ix_outbox_status_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_events_handoff_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_messages_handoff_id_seq", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_transitions_handoff_id", table_name="transitions")
    op.drop_table("transitions")
    op.drop_index("ix_handoffs_state", table_name="handoffs")
    op.drop_index("ix_handoffs_created_at_id", table_name="handoffs")
    op.drop_index("ix_handoffs_conversation_id", table_name="handoffs")
    op.drop_index("ix_handoffs_chat_id", table_name="handoffs")
    op.drop_table("handoffs")
