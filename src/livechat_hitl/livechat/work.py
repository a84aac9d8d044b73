"""The LiveChat sink: the gateway's own work against LiveChat, from the outbox.

Kinds (DESIGN §3): `start_chat` (chat in the group with the transcript for agents, the
end user's customer identity, `add_user_to_chat`, `transfer_chat` so a busy group
queues), `send_message` (as the customer, Customer API), `close_chat`
(`deactivate_chat`). Every step is resumable: progress is committed as it is made, so a
retry after a crash continues instead of starting over, and events carry `custom_id`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from livechat_hitl import ids
from livechat_hitl.domain.lifecycle import advance, touch
from livechat_hitl.domain.models import (
    Change,
    CustomerIdentity,
    DeliveryStatus,
    EventType,
    Handoff,
    Message,
    MessageType,
    OutboxItem,
    OutboxRow,
    OutboxTarget,
)
from livechat_hitl.domain.states import CloseReason, HandoffState
from livechat_hitl.livechat.accounts import CustomerSession
from livechat_hitl.livechat.client import LiveChatClient
from livechat_hitl.livechat.errors import AuthenticationError, ChatInactiveError, LiveChatError
from livechat_hitl.livechat.events import file_event, message_event
from livechat_hitl.livechat.files import FileFetcher, FileRefused
from livechat_hitl.livechat.text import split_text, transcript_texts
from livechat_hitl.outbox.sinks import Delivered, Failed
from livechat_hitl.ports import Clock, Store
from livechat_hitl.services.events import EventFactory
from livechat_hitl.services.handoffs import retry_stale

log = logging.getLogger(__name__)


def _session(identity: CustomerIdentity | None) -> CustomerSession | None:
    if identity is None or identity.customer_id is None or identity.access_token is None:
        return None
    data = dict(identity.cookies)
    return CustomerSession.from_dict(
        {
            "customer_id": identity.customer_id,
            "access_token": identity.access_token,
            "expires_at": (identity.expires_at or datetime.min).isoformat(),
            "cookies": data.get("cookies", {}),
            "organization_id": data.get("organization_id"),
            "grant": data.get("grant", "cookie"),
        }
    )


_TOKEN_RENEWED = "customer token refused; renewed it"  # noqa: S105 (a message)
_START_LOOKBACK = timedelta(minutes=5)  # clock skew between the store and LiveChat
_START_CANDIDATES = 20  # get_chat calls at most, when a start is retried


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _identity(user_id: str, session: CustomerSession) -> CustomerIdentity:
    saved = session.to_dict()
    return CustomerIdentity(
        user_id=user_id,
        customer_id=session.customer_id,
        access_token=session.access_token.get_secret_value(),
        expires_at=session.expires_at,
        cookies={
            "cookies": saved["cookies"],
            "organization_id": saved["organization_id"],
            "grant": saved["grant"],
        },
    )


class LiveChatWork:
    """`Sink` for `OutboxTarget.LIVECHAT` rows."""

    def __init__(
        self,
        client: LiveChatClient,
        store: Store,
        clock: Clock,
        events: EventFactory,
        files: FileFetcher,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._events = events
        self._files = files

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        handoff = await self._store.get_handoff(row.handoff_id)
        if handoff is None:
            return Failed(error=f"handoff {row.handoff_id} is gone", retryable=False)
        try:
            match row.kind:
                case "start_chat":
                    return await self._start(row, handoff)
                case "send_message":
                    return await self._send(row, handoff)
                case "close_chat":
                    return await self._close(handoff)
        except LiveChatError as exc:
            # Starting may have recorded the chat meanwhile: judge on the current handoff.
            current = await self._store.get_handoff(row.handoff_id)
            return self._failed(row, current or handoff, exc)
        return Failed(error=f"unknown LiveChat work {row.kind!r}", retryable=False)

    # -- start ---------------------------------------------------------------------------

    async def _start(self, row: OutboxRow, handoff: Handoff) -> Delivered | Failed:
        if not handoff.state.is_open:
            return Delivered()  # closed before LiveChat heard of it: nothing to start
        if handoff.chat_id is None:
            handoff = await self._create_chat(row, handoff)
        session = await self._customer(handoff)
        agent = self._client.agent
        user = handoff.user
        if user.name or user.email or user.avatar_url:
            await agent.update_customer(
                session.customer_id, name=user.name, email=user.email, avatar=user.avatar_url
            )
        assert handoff.chat_id is not None
        if not await self._is_chat_user(row, handoff.chat_id, session.customer_id):
            await agent.add_user_to_chat(
                handoff.chat_id,
                session.customer_id,
                "customer",
                visibility="all",
                ignore_requester_presence=True,
            )
        await agent.transfer_chat(
            handoff.chat_id,
            target_type="group",
            target_ids=[handoff.group_id],
            ignore_agents_availability=True,
            ignore_requester_presence=True,
        )
        return Delivered()

    async def _create_chat(self, row: OutboxRow, handoff: Handoff) -> Handoff:
        events = [
            message_event(text, custom_id=f"{row.id}:{n}", visibility="agents")
            for n, text in enumerate(transcript_texts(handoff))
        ]
        found = await self._started_before(row, handoff) if row.attempts > 0 else None
        if found is not None:
            chat_id, thread_id = found
            log.info("handoff %s: found chat %s an earlier try started", handoff.id, chat_id)
        else:
            started = await self._client.agent.start_chat(
                group_ids=[handoff.group_id], events=events
            )
            chat_id, thread_id = started.chat_id, started.thread_id

        async def record() -> Handoff:
            current = await self._store.get_handoff(handoff.id)
            assert current is not None
            now = self._clock.now()
            updated = touch(current, now=now, chat_id=chat_id, thread_id=thread_id)
            data = {"livechat": {"chat_id": chat_id, "thread_id": thread_id}}
            event, rows = self._events.make(updated, EventType.STARTED, data, now=now)
            await self._store.commit(Change(handoff=updated, events=(event,), outbox=rows))
            return replace(updated, version=updated.version + 1)

        return await retry_stale(record)

    async def _started_before(self, row: OutboxRow, handoff: Handoff) -> tuple[str, str] | None:
        """The chat an earlier try of this row started but did not record (a crash, or an
        answer lost on the way back), found by the `custom_id` (`<row id>:0`) of its
        first, agents-only event: among the newest chats of the group whose thread began
        after the row was written. `list_chats` cannot filter on a custom_id (a property
        filter would need a registered property namespace), so candidates are read with
        `get_chat`; a chat not among the newest page is not found, and a second is made."""
        marker = f"{row.id}:0"
        since = row.created_at - _START_LOOKBACK
        page = await self._client.agent.list_chats(
            filters={"group_ids": [handoff.group_id]}, sort_order="desc", limit=100
        )
        candidates: list[tuple[str, str]] = []
        for summary in page.chats_summary:
            thread = summary.get("last_thread_summary") or {}
            chat_id, thread_id = summary.get("id"), thread.get("id")
            if not isinstance(chat_id, str) or not isinstance(thread_id, str):
                continue
            created = _parse_time(thread.get("created_at"))
            if created is not None and created < since:
                continue
            candidates.append((chat_id, thread_id))
        for chat_id, thread_id in candidates[:_START_CANDIDATES]:
            chat = await self._client.agent.get_chat(chat_id, thread_id)
            threads = [chat.thread] if chat.thread is not None else chat.threads
            for thread in threads:
                if thread is not None and any(e.custom_id == marker for e in thread.events):
                    return chat_id, thread.id
        return None

    async def _customer(self, handoff: Handoff, *, renew: bool = False) -> CustomerSession:
        """The end user's LiveChat customer: the same one across handoffs, token fresh
        (`renew`: a new token even if ours has not expired by our clock)."""
        identities = self._client.customer_identities(clock=self._clock.now)
        known = await self._store.get_identity(handoff.user.id)
        previous = _session(known)
        if renew and previous is not None:
            previous = replace(previous, expires_at=datetime.min.replace(tzinfo=UTC))
        if previous is None and known is not None and known.cookies.get("cookies"):
            previous = None  # no usable token, but cookies to keep the identity
        session = await identities.ensure_fresh(previous)
        if previous is None or session is not previous:
            await self._store.commit(Change(identity=_identity(handoff.user.id, session)))
        if handoff.customer_id != session.customer_id:

            async def record() -> None:
                current = await self._store.get_handoff(handoff.id)
                assert current is not None
                updated = touch(current, now=self._clock.now(), customer_id=session.customer_id)
                await self._store.commit(Change(handoff=updated))

            await retry_stale(record)
        return session

    async def _is_chat_user(self, row: OutboxRow, chat_id: str, customer_id: str) -> bool:
        if row.attempts == 0:
            return False  # first try: nothing done yet, skip the look-up
        chat = await self._client.agent.get_chat(chat_id)
        return any(u.id == customer_id for u in chat.users)

    # -- messages ------------------------------------------------------------------------

    async def _send(self, row: OutboxRow, handoff: Handoff) -> Delivered | Failed:
        message = await self._store.get_message(str(row.payload["message_id"]))
        if message is None:
            return Failed(error="message is gone", retryable=False)
        if handoff.chat_id is None:
            return Failed(error="the chat is not started yet", retryable=True)
        session = await self._customer(handoff)
        customer = self._client.customer(session)
        # A retry may follow a send whose answer was lost (a crash, a timeout): the
        # events already in the chat under this row's custom_id(s) are not sent again.
        posted = await self._posted(row, handoff)
        event_id: str | None = None
        try:
            if message.type is MessageType.FILE and row.id in posted:
                event_id = posted[row.id]
            elif message.type is MessageType.FILE:
                assert message.url is not None
                fetched = await self._files.fetch(message.url, name=message.name)
                uploaded = await customer.upload_file(
                    fetched.name, fetched.content, message.content_type or fetched.content_type
                )
                sent = await customer.send_event(
                    handoff.chat_id, file_event(uploaded.url, custom_id=row.id)
                )
                event_id = sent.event_id
            else:
                pieces = split_text(message.text or "")
                for n, piece in enumerate(pieces):
                    custom = row.id if len(pieces) == 1 else f"{row.id}:{n}"
                    if custom in posted:
                        event_id = event_id or posted[custom]
                        continue
                    sent = await customer.send_event(
                        handoff.chat_id, message_event(piece, custom_id=custom)
                    )
                    event_id = event_id or sent.event_id
        except AuthenticationError as exc:
            # The customer token is refused before its time by our clock (LiveChat's
            # 8 hours passed, or it was revoked): renew it and let the relay retry soon;
            # what this try sent is found by custom_id then. Refused again: give up.
            if (row.last_error or "").startswith(_TOKEN_RENEWED):
                return self._message_failed(handoff, message, f"{exc.type}: {exc.message}")
            await self._customer(handoff, renew=True)
            return Failed(error=f"{_TOKEN_RENEWED} ({exc.type})", retryable=True, retry_after=0)
        except LiveChatError as exc:
            if exc.retryable:
                raise
            reason = "the chat is closed" if isinstance(exc, ChatInactiveError) else exc.message
            return self._message_failed(handoff, message, f"{exc.type}: {reason}")
        except FileRefused as exc:
            return self._message_failed(handoff, message, str(exc))
        done = replace(message, status=DeliveryStatus.DELIVERED, livechat_event_id=event_id)
        return Delivered(change=Change(message_updates=(done,)))

    async def _posted(self, row: OutboxRow, handoff: Handoff) -> dict[str, str]:
        """custom_id → event id of this row's events already in the chat's thread; empty
        on a first try (nothing can have been sent yet, so no look-up)."""
        if row.attempts == 0 or handoff.chat_id is None:
            return {}
        chat = await self._client.agent.get_chat(handoff.chat_id, handoff.thread_id)
        events = chat.thread.events if chat.thread is not None else []
        mine = (row.id, f"{row.id}:")
        return {
            e.custom_id: e.id
            for e in events
            if e.custom_id is not None
            and e.id is not None
            and (e.custom_id == mine[0] or e.custom_id.startswith(mine[1]))
        }

    def _message_failed(self, handoff: Handoff, message: Message, error: str) -> Delivered:
        """A message LiveChat (or the file fetch) refuses for good is marked failed, and
        its row is done: a dead row would hold back every later message of the handoff,
        and its close. The bot is told (`handoff.message_failed`) and sees the failure
        in the message's status and error."""
        log.warning("message %s of handoff %s failed: %s", message.id, message.handoff_id, error)
        failed = replace(message, status=DeliveryStatus.FAILED, error=error[:500])
        wire: dict[str, str] = {"id": message.id}
        if message.client_message_id is not None:
            wire["client_message_id"] = message.client_message_id
        data = {"message": wire, "error": failed.error}
        event, rows = self._events.make(
            handoff, EventType.MESSAGE_FAILED, data, now=self._clock.now()
        )
        return Delivered(change=Change(message_updates=(failed,), events=(event,), outbox=rows))

    # -- close ---------------------------------------------------------------------------

    async def _close(self, handoff: Handoff) -> Delivered | Failed:
        if handoff.chat_id is None:
            return Delivered()
        # Already closed (by the agent, or LiveChat) means the goal is reached.
        with contextlib.suppress(ChatInactiveError):
            await self._client.agent.deactivate_chat(
                handoff.chat_id, ignore_requester_presence=True
            )
        return Delivered()

    # -- failures ------------------------------------------------------------------------

    def _failed(self, row: OutboxRow, handoff: Handoff, exc: LiveChatError) -> Delivered | Failed:
        error = f"{exc.type}: {exc.message}"[:500]
        if exc.retryable:
            return Failed(error=error, retryable=True, retry_after=exc.retry_after)
        log.warning("LiveChat refused %s for handoff %s: %s", row.kind, handoff.id, exc.type)
        if row.kind == "start_chat" and handoff.state.is_open:
            # The refusal is the start's outcome: the handoff fails and the bot is told.
            # The row is done rather than dead, so the close of the chat it may have
            # created (queued behind it) goes out instead of waiting forever.
            return Delivered(change=self._fail_handoff(handoff, exc))
        return Failed(error=error, retryable=False)

    def _fail_handoff(self, handoff: Handoff, exc: LiveChatError) -> Change:
        now = self._clock.now()
        error = {"type": exc.type, "message": exc.message}
        failed, record = advance(
            handoff,
            HandoffState.FAILED,
            cause=f"LiveChat refused the handoff ({exc.type})",
            now=now,
            close_reason=CloseReason.FAILED,
            error=error,
        )
        event, rows = self._events.make(failed, EventType.FAILED, {"error": error}, now=now)
        cleanup: tuple[OutboxItem, ...] = ()
        if handoff.chat_id is not None:
            # Never leave an orphan chat behind: deactivate what was created.
            cleanup = (
                OutboxItem(
                    id=ids.outbox_id(),
                    handoff_id=handoff.id,
                    target=OutboxTarget.LIVECHAT,
                    kind="close_chat",
                    payload={},
                ),
            )
        return Change(handoff=failed, transition=record, events=(event,), outbox=(*rows, *cleanup))
