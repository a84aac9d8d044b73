"""The schema, declared once. Migrations in `migrations/versions` must match it exactly
(a contract test compares them).

Only portable types: every backend-specific detail lives in `dialects.py`.
Timestamps are stored in UTC and always read back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that refuses naive input and returns aware UTC.

    SQLite keeps no zone, so values are normalised to UTC before they are written:
    text comparison in SQL then orders them correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# An auto-incrementing log position: BIGSERIAL on PostgreSQL, the rowid on SQLite
# (only `INTEGER PRIMARY KEY` aliases the rowid there).
Seq = BigInteger().with_variant(Integer(), "sqlite")


def _json() -> JSON:
    return JSON(none_as_null=True)


handoffs = Table(
    "handoffs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("conversation_id", String(255), nullable=False),
    # The conversation id while the handoff is open, NULL once closed or failed: the
    # unique constraint allows at most one open handoff per conversation.
    Column("open_conversation_id", String(255), nullable=True),
    Column("state", String(16), nullable=False),
    Column("user", _json(), nullable=False),
    Column("group_id", Integer, nullable=False),
    Column("title", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("transcript", _json(), nullable=False),
    Column("metadata", _json(), nullable=False),
    Column("agent", _json(), nullable=True),
    Column("queue", _json(), nullable=True),
    Column("close_reason", String(32), nullable=True),
    Column("error", _json(), nullable=True),
    Column("chat_id", String(64), nullable=True),
    Column("thread_id", String(64), nullable=True),
    Column("customer_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("version", Integer, nullable=False),
    UniqueConstraint("open_conversation_id"),
    Index("ix_handoffs_chat_id", "chat_id"),
    Index("ix_handoffs_conversation_id", "conversation_id"),
    Index("ix_handoffs_created_at_id", "created_at", "id"),
    Index("ix_handoffs_state", "state"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("handoff_id", String(64), ForeignKey("handoffs.id"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("cause", String(255), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_transitions_handoff_id", "handoff_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("handoff_id", String(64), ForeignKey("handoffs.id"), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("text", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("name", Text, nullable=True),
    Column("content_type", String(255), nullable=True),
    Column("elements", _json(), nullable=True),
    Column("client_message_id", String(255), nullable=True),
    Column("author_id", String(255), nullable=True),
    Column("livechat_event_id", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("handoff_id", "client_message_id"),
    Index("ix_messages_handoff_id_seq", "handoff_id", "seq"),
    # "was this agent event relayed already?" for each inbound delivery, without reading
    # the handoff's whole history
    Index("ix_messages_handoff_id_livechat_event_id", "handoff_id", "livechat_event_id"),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    # The SSE id: never reused, so a client's Last-Event-ID stays meaningful.
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("handoff_id", String(64), ForeignKey("handoffs.id"), nullable=False),
    Column("conversation_id", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("data", _json(), nullable=False),
    Index("ix_events_handoff_id", "handoff_id"),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("handoff_id", String(64), ForeignKey("handoffs.id"), nullable=False),
    Column("target", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("payload", _json(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    # No index on `handoff_id` for the foreign key: the store never deletes a handoff
    # and never names `id` in a handoff's UPDATE, so SQLite never looks for a handoff's
    # outbox rows; every query of a lane reads only its undelivered rows (below). Such
    # an index would cost each new row a write to a page of its handoff (0005).
    # The head-of-line probe ("an earlier undelivered row of this handoff and target?")
    # reads only undelivered rows, not the handoff's whole delivered history.
    Index(
        "ix_outbox_undelivered",
        "handoff_id",
        "target",
        "seq",
        sqlite_where=text("status != 'delivered'"),
        postgresql_where=text("status != 'delivered'"),
    ),
    # Claiming walks each target's pending rows in log order, stopping once it has enough.
    Index(
        "ix_outbox_pending_target",
        "target",
        "seq",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    sqlite_autoincrement=True,
)

dedup_keys = Table(
    "dedup_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("customer_id", String(64), nullable=True),
    Column("access_token", Text, nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("cookies", _json(), nullable=False),
)
