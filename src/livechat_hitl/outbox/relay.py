"""The outbox relay: claims due rows with a lease, delivers them outside any
transaction, and records the outcome.

Rows of different handoffs go out in parallel; rows of one handoff (and target) one at
a time and in order, because the store only hands out the oldest undelivered row of a
handoff. The relay never sleeps per row: with nothing to claim it waits on the notifier
until the next row is due, or until a commit wakes it.

A store that `HandsOverRows` (SQLite) leases a new row that heads its lane in the
transaction that writes it and hands it to the relay after the commit (`take`), while
the relay has a free slot; the relay then claims only when the store's `claim_hint`
moved (a row was not handed over, or one waits behind a row just delivered), when a
retry it knows of is due, and at least once a second while it runs.

Several relays (processes) may share one database: each records an outcome under the
lease of its claim, so a relay that overran its lease (and lost the row to another)
records nothing; that outcome is counted as `superseded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Final, Self

from livechat_hitl import metrics
from livechat_hitl.domain.models import Change, OutboxRow, OutboxTarget
from livechat_hitl.errors import ConversationBusy, StaleHandoff
from livechat_hitl.outbox.retry import RetryPolicy
from livechat_hitl.outbox.sinks import Delivered, Failed, LaneOutcome, LaneSink, Sink
from livechat_hitl.ports import Clock, Committer, EventNotifier, HandsOverRows, RowsWanted, Store

log = logging.getLogger(__name__)

OutcomeHook = Callable[[OutboxRow, str], None]

# Outcome labels (also the `outcome` label of hitl_outbox_deliveries_total).
DELIVERED: Final = "delivered"
RETRY: Final = "retry"
DEAD: Final = "dead"
STALE: Final = "stale"
UNRECORDED: Final = "unrecorded"
SUPERSEDED: Final = "superseded"

MAX_ERROR_LENGTH = 2000
MIN_WAIT = 0.01
DUE_REFRESH = timedelta(seconds=1)


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        sinks: Mapping[OutboxTarget, Sink],
        clock: Clock,
        notifier: EventNotifier,
        policy: RetryPolicy | None = None,
        *,
        lease_seconds: float = 30.0,
        batch: int = 50,
        concurrency: int = 16,
        idle_wait: float = 60.0,
        restart_delay: float = 1.0,
        stop_grace: float = 5.0,
        on_outcome: OutcomeHook | None = None,
        committer: Committer | None = None,
    ) -> None:
        if not sinks:
            raise ValueError("the relay needs at least one sink")
        self._store = store
        # Deliveries are recorded through `committer` when given (a group committer:
        # the outcomes of lanes that end together share one transaction).
        self._committer: Committer = committer or store
        self._sinks = dict(sinks)
        self._targets = tuple(self._sinks)
        self._clock = clock
        self._notifier = notifier
        self._policy = policy or RetryPolicy()
        self._lease_seconds = lease_seconds
        self._batch = max(1, batch)
        self._concurrency = max(1, concurrency)
        self._idle_wait = idle_wait
        self._restart_delay = restart_delay
        self._stop_grace = stop_grace
        self._on_outcome = on_outcome
        self._lanes = {
            target: sink.lane_size
            for target, sink in self._sinks.items()
            if isinstance(sink, LaneSink) and sink.lane_size > 1
        }
        self._inflight: set[asyncio.Task[list[str]]] = set()
        self._next_due: datetime | None = None
        self._next_due_checked: datetime | None = None
        self._noted: datetime | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        # The store hands this relay the new rows it wants (see `HandsOverRows`); then
        # a wake-up claims only when something else may be claimable.
        self._handing: HandsOverRows | None = None  # the store, while it hands rows over
        self._hint_seen: int | None = None
        self._must_claim = True
        self._claimed_at: datetime | None = None
        self.counts: dict[str, int] = {}

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        if self._loop_task is None:
            self._stopping = False
            self._must_claim = True
            self._loop_task = asyncio.create_task(self._supervise(), name="outbox-relay")
            if isinstance(self._store, HandsOverRows) and self._store.hand_rows_to(self):
                self._handing = self._store

    async def stop(self) -> None:
        """Stop claiming, give deliveries in flight `stop_grace` seconds, cancel the
        rest (their leases run out and another relay picks them up)."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            # The flag ends the loop even when the cancellation is swallowed: on Python
            # 3.11, `asyncio.wait_for` (the notifier's wait) drops a cancel that arrives
            # just as its inner wait completes, and the loop would sleep `idle_wait` on.
            self._stopping = True
            if self._handing is not None:
                self._handing.hand_rows_to(None)
                self._handing = None
            self._notifier.notify()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            _done, pending = await asyncio.wait(self._inflight, timeout=self._stop_grace)
            for straggler in pending:
                straggler.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    # -- one pass (tests, CLI) -------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver it; the number of rows handled."""
        rows = await self._claim(self._batch)
        gate = asyncio.Semaphore(self._concurrency)

        async def bounded(lane: list[OutboxRow]) -> list[str]:
            async with gate:
                return await self._deliver(lane)

        await asyncio.gather(*(bounded(lane) for lane in _by_lane(rows)))
        return len(rows)

    # -- the background loop -------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay loop failed; restarting")
                await asyncio.sleep(self._restart_delay)

    async def _run(self) -> None:
        # Register with the notifier before the first claim: a task's first wait only
        # sees later notifies, so a commit between that claim and the first wait would
        # otherwise be slept through (up to idle_wait).
        await self._notifier.wait(0)
        while not self._stopping:
            free = self._concurrency - len(self._inflight)
            claimed_at = self._clock.now()
            if free > 0 and self._may_find(claimed_at):
                want = min(self._batch, free)
                # The claim sees every commit so far: count their wake-ups as seen, so
                # only later ones make the next wait return at once.
                await self._notifier.wait(0)
                if self._handing is not None:
                    self._hint_seen = self._handing.claim_hint
                self._claimed_at = claimed_at
                rows = await self._claim(want, claimed_at)
                lanes = _by_lane(rows)
                for lane in lanes:
                    self._launch(lane)
                self._must_claim = len(lanes) == want
                if self._must_claim:
                    continue  # there may be more due right now
            await self._notifier.wait(await self._wait_seconds(free > 0, claimed_at))
            # One turn of the loop before claiming: the deliveries whose commit woke us
            # end (and free their slots) meanwhile, so one claim serves them all instead
            # of one claim per wake-up (most of which found nothing).
            await asyncio.sleep(0)

    def _may_find(self, now: datetime) -> bool:
        """Whether a claim now may find something. Only a store that hands this relay
        its new rows tells (`claim_hint`); even then, a claim at least every
        DUE_REFRESH while the loop runs, for rows other processes made due."""
        if self._handing is None or self._must_claim:
            return True
        if self._hint_seen != self._handing.claim_hint:
            return True
        if self._claimed_at is None or now - self._claimed_at >= DUE_REFRESH:
            return True
        return self._next_due is not None and self._next_due <= now

    def _launch(self, lane: list[OutboxRow]) -> None:
        task = asyncio.create_task(self._tracked(lane), name=f"outbox-{lane[0].id}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # -- rows the store hands over (HandsOverRows) -------------------------------------

    def rows_wanted(self) -> RowsWanted | None:
        if self._stopping or not self.running:
            return None
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return None
        return RowsWanted(
            targets=frozenset(self._targets), limit=free, lease_seconds=self._lease_seconds
        )

    def take(self, rows: list[OutboxRow]) -> None:
        if self._stopping or not self.running:
            # Stopped between the offer and the commit: the rows' lease runs out and a
            # claim takes them then (as after a crash).
            log.info("outbox rows %s handed to a stopped relay", ", ".join(r.id for r in rows))
            return
        metrics.OUTBOX_CLAIMS.labels(result="handed").inc(len(rows))
        for lane in _by_lane(rows):
            self._launch(lane)

    async def _wait_seconds(self, can_claim: bool, claimed_at: datetime) -> float:
        if not can_claim:
            return self._idle_wait  # a delivery in flight notifies when it ends
        # The store is asked at most every DUE_REFRESH (or once the time it gave has
        # come): what changes it meanwhile is this relay's own retries (noted as they
        # are scheduled), and commits, which wake the loop anyway. Other processes'
        # retries and abandoned leases are picked up by the next look.
        checked = self._next_due_checked
        if (
            checked is None
            or claimed_at - checked >= DUE_REFRESH
            or (self._next_due is not None and self._next_due <= claimed_at)
        ):
            self._noted = None  # a retry noted while the store answers counts too
            found = await self._store.next_due_at(self._targets, after=claimed_at)
            times = [t for t in (found, self._noted) if t is not None]
            self._next_due = min(times) if times else None
            self._next_due_checked = claimed_at
        due = self._next_due
        if due is None:
            return self._idle_wait
        seconds = (due - self._clock.now()).total_seconds()
        return min(max(seconds, MIN_WAIT), self._idle_wait)

    def _expect_due(self, when: datetime) -> None:
        """Note a retry this relay scheduled (the cached next-due time may be later)."""
        if self._next_due is None or when < self._next_due:
            self._next_due = when
        if self._noted is None or when < self._noted:
            self._noted = when

    async def _claim(self, limit: int, now: datetime | None = None) -> list[OutboxRow]:
        rows = await self._store.claim_due(
            now=now or self._clock.now(),
            lease_seconds=self._lease_seconds,
            limit=limit,
            targets=self._targets,
            lanes=self._lanes,
        )
        metrics.OUTBOX_CLAIMS.labels(result="found" if rows else "empty").inc()
        return rows

    # -- one lane's rows -------------------------------------------------------------

    async def _deliver(self, rows: list[OutboxRow]) -> list[str]:
        """Deliver consecutive rows of one lane (usually one) and record the outcome;
        the labels of the rows attempted."""
        target = str(rows[0].target)
        started = time.perf_counter()
        lane = await self._attempt(rows)
        metrics.OUTBOX_DELIVERY_SECONDS.labels(target=target).observe(time.perf_counter() - started)
        labels: list[str] = []
        settled: set[str] = set()
        try:
            if lane.delivered:
                done = rows[: lane.delivered]
                label = await self._record(done, Delivered(change=lane.change))
                labels += [label] * len(done)
                if label == DELIVERED:
                    settled.update(row.id for row in done)
                elif label == STALE:
                    settled.add(done[0].id)
            if lane.failure is not None and (not labels or labels[-1] == DELIVERED):
                failing = rows[lane.delivered]
                labels.append(await self._record([failing], lane.failure))
                settled.add(failing.id)
            untried = [row.id for row in rows if row.id not in settled]
            if untried:
                await self._store.unclaim(untried, lease_until=rows[0].lease_until)
        except Exception:
            log.exception(
                "could not record the outcome of outbox rows %s; they are retried once "
                "their lease runs out",
                ", ".join(row.id for row in rows),
            )
            attempted = lane.delivered + (lane.failure is not None)
            labels += [UNRECORDED] * max(0, attempted - len(labels))
        for row, label in zip(rows, labels, strict=False):
            metrics.OUTBOX_DELIVERIES.labels(target=target, outcome=label).inc()
            self.counts[label] = self.counts.get(label, 0) + 1
            if self._on_outcome is not None:
                self._on_outcome(row, label)
        return labels

    async def _tracked(self, rows: list[OutboxRow]) -> list[str]:
        try:
            return await self._deliver(rows)
        finally:
            # Free the slot before waking the loop: several deliveries ending in one
            # turn of the event loop would otherwise wake it while their tasks still
            # count as in flight, and it would sleep `idle_wait` with slots free.
            task = asyncio.current_task()
            if task is not None:
                self._inflight.discard(task)
            self._notifier.notify()  # a slot is free, and the handoff's next row may be due

    async def _attempt(self, rows: list[OutboxRow]) -> LaneOutcome:
        sink = self._sinks[rows[0].target]
        try:
            if len(rows) > 1 and isinstance(sink, LaneSink):
                lane = await sink.deliver_lane(rows)
                if lane.delivered == 0 and lane.failure is None:
                    raise ValueError("the sink neither delivered nor failed the lane's first row")
                return lane
            outcome = await sink.deliver(rows[0])
        except Exception as exc:
            log.exception("sink %s raised on outbox row %s", rows[0].target, rows[0].id)
            metrics.OUTBOX_SINK_ERRORS.labels(target=str(rows[0].target)).inc()
            outcome = Failed(error=f"{type(exc).__name__}: {exc}", retryable=True)
        if isinstance(outcome, Failed):
            return LaneOutcome(delivered=0, failure=outcome)
        return LaneOutcome(delivered=1, change=outcome.change)

    async def _record(self, rows: list[OutboxRow], outcome: Delivered | Failed) -> str:
        """Record `outcome`: a delivery of all `rows`, or a failure of `rows[0]`."""
        row = rows[0]
        now = self._clock.now()
        retry_at = self._policy.next_attempt_at(row.attempts + 1, now, None)
        lease = row.lease_until
        if isinstance(outcome, Delivered):
            change = _completing(outcome.change, rows)
            try:
                completed = await self._committer.commit(change)
            except (StaleHandoff, ConversationBusy) as exc:
                # The peer has it, but the state change lost a race: deliver again
                # (sinks recognise repeats) and let the sink build the change anew.
                log.info("outbox row %s: %s; retrying", row.id, exc)
                self._expect_due(retry_at)
                await self._store.release(
                    row.id,
                    error=_describe(exc),
                    next_attempt_at=retry_at,
                    dead=False,
                    lease_until=lease,
                )
                return STALE
            if not completed:
                log.info("outbox row %s: delivered, but its lease had passed on", row.id)
                return SUPERSEDED
            return DELIVERED
        dead = not outcome.retryable or self._policy.gives_up(row, now)
        if not dead:
            retry_at = self._policy.next_attempt_at(row.attempts + 1, now, outcome.retry_after)
        error = outcome.error[:MAX_ERROR_LENGTH]
        self._expect_due(retry_at)
        try:
            released = await self._store.release(
                row.id,
                error=error,
                next_attempt_at=retry_at,
                dead=dead,
                change=outcome.change if dead else None,
                lease_until=lease,
            )
        except (StaleHandoff, ConversationBusy) as exc:
            log.info("outbox row %s: giving up lost a race (%s); retrying", row.id, exc)
            await self._store.release(
                row.id, error=error, next_attempt_at=retry_at, dead=False, lease_until=lease
            )
            return STALE
        if not released:
            log.info("outbox row %s: failed, but its lease had passed on", row.id)
            return SUPERSEDED
        if dead:
            log.warning("outbox row %s (%s %s) is dead: %s", row.id, row.target, row.kind, error)
            return DEAD
        return RETRY


def _completing(change: Change | None, rows: list[OutboxRow]) -> Change:
    done = tuple(row.id for row in rows)
    lease = rows[0].lease_until
    if change is None:
        return Change(outbox_done=done, outbox_lease=lease)
    return dataclasses.replace(change, outbox_done=(*change.outbox_done, *done), outbox_lease=lease)


def _by_lane(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
    """Claimed rows grouped by lane (handoff and target), each lane in `seq` order."""
    lanes: dict[tuple[str, OutboxTarget], list[OutboxRow]] = {}
    for row in sorted(rows, key=lambda r: r.seq):
        lanes.setdefault((row.handoff_id, row.target), []).append(row)
    return list(lanes.values())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
