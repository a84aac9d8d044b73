"""The load generator: closed loop (N workers, as fast as answered) or open loop (a fixed
rate, whatever the answers), always bounded in count and in time.

Requests go through `RawClient`, a minimal HTTP/1.1 keep-alive client on asyncio
streams: httpx's pool costs ~1 ms of CPU per request here and tops out near 900 req/s
on one core (slower still with 64 connections), so it would measure itself, not the
server. httpx stays for the control requests.

Each request is a `Shot`: when it was sent (wall clock, comparable with the other
processes' `time.time()`), how long the answer took, and its status (0: no answer).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# (path, body bytes) of request number `seq`
RequestFactory = Callable[[int], tuple[str, bytes]]


@dataclass(slots=True)
class Shot:
    seq: int
    sent_at: float
    latency: float
    status: int


class RawClient:
    """POSTs over up to `connections` keep-alive HTTP/1.1 connections to one host."""

    def __init__(
        self, base_url: str, *, connections: int, headers: dict[str, str] | None = None
    ) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.connections = connections
        extra = {"content-type": "application/json", **(headers or {})}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._gate = asyncio.Semaphore(connections)
        self.timeout = 30.0

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"{self._head}content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        async with self._gate:
            reader, writer, reused = await self._connection()
            try:
                status, content, keep = await self._exchange(reader, writer, request)
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                if not reused or getattr(exc, "partial", b""):
                    raise
                # The server closed this idle connection as the request went out (its
                # keep-alive timeout): nothing was answered, so send it once more on a
                # new connection, as HTTP clients do.
                reader, writer = await asyncio.open_connection(self.host, self.port)
                status, content, keep = await self._exchange(reader, writer, request)
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, content

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes, bool]:
        try:
            writer.write(request)
            async with asyncio.timeout(self.timeout):
                return await _read_response(reader)
        except BaseException:
            writer.close()
            raise

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """An idle connection the server has not closed (servers close idle keep-alive
        connections after a few seconds: uvicorn after 5), else a new one."""
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            return reader, writer, True
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        content = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        content = b"".join(c[:-2] for c in chunks)
    else:
        content = b""
    return status, content, headers.get("connection", "").lower() != "close"


def client(base_url: str, *, connections: int, headers: dict[str, str] | None = None) -> RawClient:
    return RawClient(base_url, connections=connections, headers=headers)


async def _shoot(http: RawClient, make: RequestFactory, seq: int) -> Shot:
    path, body = make(seq)
    sent_at = time.time()
    started = time.perf_counter()
    try:
        status, _ = await http.post(path, body)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        status = 0
    return Shot(seq, sent_at, time.perf_counter() - started, status)


async def closed_loop(
    http: RawClient,
    make: RequestFactory,
    *,
    count: int,
    concurrency: int,
    max_seconds: float,
    first_seq: int = 0,
) -> tuple[list[Shot], float]:
    """`concurrency` workers send requests `first_seq`.. until `count` are sent or
    `max_seconds` passed; returns the shots and the elapsed seconds."""
    shots: list[Shot] = []
    next_seq = first_seq
    last_seq = first_seq + count
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal next_seq
        while next_seq < last_seq and time.perf_counter() < deadline:
            seq, next_seq = next_seq, next_seq + 1
            shots.append(await _shoot(http, make, seq))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return shots, time.perf_counter() - started


async def open_loop(
    http: RawClient,
    make: RequestFactory,
    *,
    rate: float,
    seconds: float,
    max_inflight: int = 512,
    first_seq: int = 0,
) -> tuple[list[Shot], float, int]:
    """Send at `rate` per second for `seconds`, on schedule (a late request does not
    delay the next). Returns shots, elapsed seconds, and how many scheduled sends were
    skipped because `max_inflight` requests were already waiting (the server fell behind).
    """
    shots: list[Shot] = []
    total = int(rate * seconds)
    gate = asyncio.Semaphore(max_inflight)
    tasks: set[asyncio.Task[None]] = set()
    skipped = 0

    async def one(seq: int) -> None:
        try:
            shots.append(await _shoot(http, make, seq))
        finally:
            gate.release()

    started = time.perf_counter()
    for i in range(total):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if gate.locked():
            skipped += 1
            continue
        await gate.acquire()
        task = asyncio.create_task(one(first_seq + i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    return shots, time.perf_counter() - started, skipped


def percentiles(values: list[float], points: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles in milliseconds (values in seconds); empty: NaN."""
    if not values:
        return {f"p{int(p)}": float("nan") for p in points}
    ordered = sorted(values)
    out = {}
    for p in points:
        index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
        out[f"p{int(p)}"] = ordered[index] * 1000
    return out
