"""Durable state on SQLAlchemy Core: SQLite (embedded) or PostgreSQL."""

from livechat_hitl.store.migrate import migrate
from livechat_hitl.store.notifier import LocalNotifier
from livechat_hitl.store.pg_notifier import PgNotifier, listen_for_commits
from livechat_hitl.store.sql_store import SqlStore, open_store

__all__ = ["LocalNotifier", "PgNotifier", "SqlStore", "listen_for_commits", "migrate", "open_store"]
