"""Drop the outbox's full `(handoff_id, target, seq)` index.

It served only SQLite's foreign-key check when a handoff's UPDATE set `id` (to itself);
the store's UPDATE no longer names `id`, and every lane query reads the partial
`ix_outbox_undelivered`. Each new outbox row wrote a page of this index picked by its
handoff: on the webhook door's group commit, one more WAL frame per delivery
(bench/RESULTS.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outbox_handoff_id_target_seq", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_handoff_id_target_seq", "outbox", ["handoff_id", "target", "seq"])
