"""The durable floor: the least any Python door on the gateway's stack must do before it
may answer 200 to a LiveChat delivery, and nothing more.

It reads the body, parses the JSON, checks `secret_key` (401 otherwise), derives the
de-dup key from the payload, and appends `(key, body)` to a one-table SQLite file in
WAL mode with `synchronous=NORMAL` (the gateway's settings), many deliveries to a
transaction like the gateway's group commit; it answers after that commit. No schema
beyond one unique key, no validation of the payload, no lookup of the chat, no relay,
no logging or metrics. `bench.ingest` drives it with the same requests as the gateway
and the bare baseline: its rate is the ceiling a durable door can reach on this
machine and server stack, so the gateway's figure reads against what is possible, not
only against a server that does nothing.

Run: `python -m bench.floor_app PORT DB SECRET`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sqlite3
import sys
from typing import Any

from bench.baseline_app import Receive, Scope, Send, serve

MAX_BATCH = 256


class FloorDoor:
    def __init__(self, db: str, secret: str) -> None:
        self._path = db
        self._secret = secret.encode()
        self._queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._db: sqlite3.Connection | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status = await self._answer(receive)
            body = b'{"ok":true}' if status == 200 else b'{"ok":false}'
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _answer(self, receive: Receive) -> int:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            envelope = json.loads(body)
            secret = str(envelope.get("secret_key", "")).encode()
            payload = envelope["payload"]
            key = ":".join(
                (
                    envelope["action"],
                    payload["chat_id"],
                    payload["thread_id"],
                    payload["event"]["id"],
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return 400
        if not hmac.compare_digest(secret, self._secret):
            return 401
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((key, body, written))
        self._wake.set()
        try:
            await written
        except sqlite3.Error:
            return 500
        return 200

    async def _flush_forever(self) -> None:
        assert self._db is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                try:
                    with self._db:  # BEGIN … COMMIT, or ROLLBACK on an error
                        self._db.execute("BEGIN IMMEDIATE")
                        self._db.executemany(
                            "INSERT OR IGNORE INTO inbox (key, body) VALUES (?, ?)",
                            [(key, body) for key, body, _ in batch],
                        )
                except sqlite3.Error as error:
                    for _, _, written in batch:
                        written.set_exception(error)
                    continue
                for _, _, written in batch:
                    written.set_result(None)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._db = sqlite3.connect(self._path, isolation_level=None)
                for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "temp_store=MEMORY"):
                    self._db.execute(f"PRAGMA {pragma}")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS inbox"
                    " (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)"
                )
                self._flusher = asyncio.create_task(self._flush_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                if self._db is not None:
                    self._db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def rows(db: str) -> int:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM inbox").fetchone()
    return int(count)


def main() -> None:
    port, db, secret = sys.argv[1:4]
    app: Any = FloorDoor(db, secret)
    serve(app, int(port))


if __name__ == "__main__":
    main()
