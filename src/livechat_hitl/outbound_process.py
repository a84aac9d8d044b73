"""The busy outbound exchanges made by a child process, off the gateway's event loop.

The gateway runs on one event loop, and at its limit that loop is the bottleneck while
the machine's second core is half idle (bench/RESULTS.md). aiohttp's request machinery
for one exchange (a bot webhook POST, a LiveChat action call) costs ~85 µs of that loop's
CPU; handing the same request to a child process over a pipe costs ~15 µs, and the child
(its own interpreter, its own core) does the HTTP with `AiohttpTransport`.

`ProcessTransport` is an `AiohttpTransport` whose `exchange` goes to that child; the
rest (`handle_async_request`: file uploads and the rarer calls) stays in this process.
Requests and replies travel in frames (a 4-byte length, then a pickled list), many per
frame when many are in flight. The pipe is private between this process and the child
it started, so unpickling what comes through it trusts no one new.

What can go wrong, and what the caller sees (the same httpx exceptions as in-process,
so the outbox retries as it always does):
- the child exits (crash, OOM, killed): every exchange in flight fails with
  `httpx.TransportError`; the next one starts a new child (at most one start a second);
- the child stops answering: an exchange gives up after twice the sum of its timeout
  phases plus `_GRACE`, with `httpx.ReadTimeout`;
- the caller is cancelled: the child's answer, when it comes, is dropped (the peer may
  have the request, as when an in-process exchange is cancelled mid-way).

The child runs in a process group of its own (a Ctrl-C in a terminal reaches only the
gateway) and ignores SIGINT and SIGTERM (a service manager may signal every process of
the service): it ends when its stdin closes, which is when this process closes the
transport or exits, however it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx
from multidict import CIMultiDict, CIMultiDictProxy

from livechat_hitl.logs import configure_logging
from livechat_hitl.outbound import AiohttpTransport, Reply

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
_RESPAWN_EVERY = 1.0  # seconds between two starts of the child
_SWEEP_EVERY = 1.0  # seconds between two looks for exchanges the child never answered
_GRACE = 5.0  # seconds on top of twice an exchange's timeout phases
_CLOSE_WAIT = 5.0  # seconds the child gets to exit once its stdin is closed

# The httpx exceptions a child's exchange may raise, by name (anything else: TransportError).
_ERRORS: dict[str, type[httpx.HTTPError]] = {
    error.__name__: error
    for error in (
        httpx.ConnectTimeout,
        httpx.ReadTimeout,
        httpx.WriteTimeout,
        httpx.PoolTimeout,
        httpx.ConnectError,
        httpx.ReadError,
        httpx.WriteError,
        httpx.RemoteProtocolError,
        httpx.UnsupportedProtocol,
        httpx.DecodingError,
        httpx.TransportError,
    )
}

# (id, method, url, headers, content, timeout phases, read limit)
_Request = tuple[int, str, str, dict[str, str], bytes | None, dict[str, float | None], int | None]
# (id, status, headers, body) or (id, None, error type name, message)
_Answer = tuple[int, int | None, Any, Any]


def _frame(items: list[Any]) -> bytes:
    data = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> list[Any] | None:
    """The next frame's items; None at the end of the stream."""
    try:
        (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        data = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    # The pipe's other end is the process that started this one, or the child this
    # one started: nobody else writes to it.
    items: list[Any] = pickle.loads(data)  # noqa: S301
    return items


def _backstop(timeout: Mapping[str, float | None]) -> float | None:
    phases = [t for t in timeout.values() if t]
    return 2 * sum(phases) + _GRACE if phases else None


class _Child:
    """One child process and the exchanges in flight with it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._ids = itertools.count(1)
        # id -> (the caller's future, the loop time after which it gives up)
        self._pending: dict[int, tuple[asyncio.Future[Reply], float | None]] = {}
        self._out: list[_Request] = []
        self.gone = False
        # Set by the child's first frame (empty), once it reads requests.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reading = asyncio.create_task(self._read(), name="outbound-process-read")
        self._sweeping = asyncio.create_task(self._sweep(), name="outbound-process-sweep")

    def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: Mapping[str, float | None],
        read_limit: int | None,
    ) -> asyncio.Future[Reply]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        request_id = next(self._ids)
        backstop = _backstop(timeout)
        deadline = None if backstop is None else loop.time() + backstop
        self._pending[request_id] = (future, deadline)
        if not self._out:
            loop.call_soon(self._flush)  # everything asked for in this turn, in one frame
        self._out.append(
            (request_id, method, url, dict(headers), content, dict(timeout), read_limit)
        )
        return future

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.gone or not out:
            return
        try:
            self._stdin.write(_frame(out))
        except (ConnectionError, RuntimeError):  # the pipe closed under us
            self._end("its pipe closed")

    async def _read(self) -> None:
        try:
            while (answers := await _read_frame(self._stdout)) is not None:
                if not self.ready.done():
                    self.ready.set_result(None)
                for answer in answers:
                    self._answer(answer)
        except Exception:
            log.exception("outbound process: unreadable answer")
        self._end(f"it exited (code {await self.process.wait()})")

    def _answer(self, answer: _Answer) -> None:
        request_id, status, headers, body = answer
        entry = self._pending.pop(request_id, None)
        if entry is None or entry[0].done():
            return  # its caller gave up or was cancelled
        future = entry[0]
        if status is None:
            error = _ERRORS.get(str(headers), httpx.TransportError)
            future.set_exception(error(str(body)))
            return
        future.set_result(Reply(status, CIMultiDictProxy(CIMultiDict(headers)), body))

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.gone:
            await asyncio.sleep(_SWEEP_EVERY)
            now = loop.time()
            late = [i for i, (_, deadline) in self._pending.items() if deadline and deadline < now]
            for request_id in late:
                future, _ = self._pending.pop(request_id)
                if not future.done():
                    future.set_exception(
                        httpx.ReadTimeout("the outbound process did not answer in time")
                    )

    def _end(self, why: str) -> None:
        if self.gone:
            return
        self.gone = True
        pending, self._pending = self._pending, {}
        failed = 0
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(httpx.TransportError(f"the outbound process ended: {why}"))
                failed += 1
        if failed:
            log.warning("outbound process ended (%s); %d exchanges in flight failed", why, failed)
        if not self.ready.done():
            self.ready.set_exception(httpx.TransportError(f"the outbound process ended: {why}"))
            self.ready.exception()  # retrieved: nobody may be waiting for it
        self._sweeping.cancel()

    async def close(self) -> None:
        """Close its stdin (it exits when it sees the end) and wait for it to exit."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), _CLOSE_WAIT)
        except TimeoutError:
            log.warning("outbound process did not exit in %.0f s; killing it", _CLOSE_WAIT)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        await self._reading
        self._end("the transport closed")


class ProcessTransport(AiohttpTransport):
    """`AiohttpTransport` whose `exchange` runs in a child process (see the module)."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        log_level: str = "info",
        log_format: str = "text",
    ) -> None:
        super().__init__(max_connections=max_connections, keepalive_expiry=keepalive_expiry)
        self._log = (log_level, log_format)  # the child logs as the gateway does
        self._child: _Child | None = None
        self._started_at: float | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def start(self, timeout: float = 30.0) -> None:
        """Start the child now rather than at the first exchange, and wait until it
        reads requests (`httpx.TransportError` if it ends before)."""
        child = await self._running()
        await asyncio.wait_for(asyncio.shield(child.ready), timeout)

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        child = self._child
        return None if child is None or child.gone else child.process.pid

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: Mapping[str, float | None],
        read_limit: int | None = None,
    ) -> Reply:
        child = self._child
        if child is None or child.gone:
            child = await self._running()
        return await child.exchange(method, url, headers, content, timeout, read_limit)

    async def _running(self) -> _Child:
        async with self._lock:
            child = self._child
            if child is not None and not child.gone:
                return child
            if self._closed:
                raise httpx.TransportError("the transport is closed")
            now = time.monotonic()
            if self._started_at is not None and now - self._started_at < _RESPAWN_EVERY:
                raise httpx.TransportError("the outbound process ended; restarting it shortly")
            self._started_at = now
            if child is not None:
                await child.close()  # reap the one that ended
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                str(self._max_connections),
                str(self._keepalive_expiry),
                *self._log,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                # Not in the terminal's process group: a Ctrl-C reaches the gateway,
                # which ends the child once it has shut down. (A session of its own:
                # uvloop does not take `process_group`.)
                start_new_session=True,
            )
            log.info("outbound process %d started", process.pid)
            self._child = _Child(process)
            return self._child

    async def aclose(self) -> None:
        self._closed = True
        child, self._child = self._child, None
        if child is not None:
            await child.close()
        await super().aclose()


# -- the child ---------------------------------------------------------------------------


async def _serve(transport: AiohttpTransport, answers_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    writer, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(answers_fd, "wb", buffering=0)
    )
    out: list[_Answer] = []
    tasks: set[asyncio.Task[None]] = set()

    def flush() -> None:
        if out and not writer.is_closing():
            writer.write(_frame(out))
        out.clear()

    def answer(item: _Answer) -> None:
        if not out:
            loop.call_soon(flush)  # every answer ready in this turn, in one frame
        out.append(item)

    async def one(request: _Request) -> None:
        request_id, method, url, headers, content, timeout, read_limit = request
        try:
            reply = await transport.exchange(
                method,
                url,
                headers=headers,
                content=content,
                timeout=timeout,
                read_limit=read_limit,
            )
        except httpx.HTTPError as exc:
            answer((request_id, None, type(exc).__name__, str(exc)))
        except Exception as exc:  # a bug here must not take the other exchanges down
            answer((request_id, None, "TransportError", f"{type(exc).__name__}: {exc}"))
        else:
            answer((request_id, reply.status_code, list(reply.headers.items()), reply.content))

    writer.write(_frame([]))  # ready
    try:
        while (requests := await _read_frame(reader)) is not None:
            for request in requests:
                task = asyncio.create_task(one(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        # stdin closed: the parent closed the transport or is gone; nobody reads answers.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await transport.aclose()
        writer.close()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Answers go out on the original stdout; anything else printing to stdout (a
    # library, a warning) lands on stderr instead of in the middle of a frame.
    answers_fd = os.dup(1)
    os.dup2(2, 1)
    max_connections, keepalive_expiry = int(argv[0]), float(argv[1])
    configure_logging(argv[2], argv[3])  # redacted, like the gateway's own lines
    transport = AiohttpTransport(max_connections=max_connections, keepalive_expiry=keepalive_expiry)
    try:
        import uvloop  # optional: uvicorn's "standard" extra
    except ImportError:
        asyncio.run(_serve(transport, answers_fd))
    else:
        uvloop.run(_serve(transport, answers_fd))


if __name__ == "__main__":
    main(sys.argv[1:])
