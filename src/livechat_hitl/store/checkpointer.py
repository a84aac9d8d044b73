"""SQLite's WAL checkpoints in a thread of their own, off the event loop.

In WAL mode every commit appends pages to the `-wal` file, and by default the commit that
takes the log past 1,000 pages also copies the log back into the database file and, with
`synchronous=NORMAL`, syncs both files (a checkpoint). The store's writer runs in the
event loop's thread (inline.py), so that commit held every request in flight for the
checkpoint's length: at 300 agent messages/s, ~9 checkpoints a second of ~6 ms each, the
gateway's whole p95-p99 latency (bench/RESULTS.md).

`Checkpointer` runs `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own every
`interval` seconds in a daemon thread. The `sqlite3` module releases the GIL while SQLite
works, so the copy and the syncs overlap the loop instead of stopping it. PASSIVE never
waits for a lock and never blocks a writer; SQLite's own guarantees are unchanged (a
checkpoint moves committed pages only, under its checkpoint lock). The writer's automatic
checkpoint stays as a backstop, at `BACKSTOP_PAGES` (see there why it is needed).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.1
# The writer's own automatic checkpoint (`PRAGMA wal_autocheckpoint`) while the thread
# runs. Under a steady stream of commits a PASSIVE checkpoint never catches the last
# frame (commits land while it syncs), so SQLite never starts the log over by itself:
# the log grows to this size, and the writer's checkpoint (a few frames to copy, but
# both syncs, ~15-25 ms in the loop's thread) then lets the log start over. The larger
# the backstop, the rarer that pause: at 300 agent messages/s (~9,000 pages/s) once in
# ~5 s at 50,000 pages (~200 MB of `-wal` file at 4 KiB pages; once in ~1 s at 10,000).
# With quieter traffic the thread's own checkpoints complete and the log starts over
# long before.
BACKSTOP_PAGES = 50_000


class Checkpointer:
    """Checkpoints the WAL of the SQLite file at `path` every `interval` seconds."""

    def __init__(self, path: str, *, interval: float = INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()  # started again after a stop (a store that writes again)
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as error:
            log.warning("WAL checkpoint thread not started: %s", error)
            return
        failed = False
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    if not failed:  # once: the writer's backstop checkpoints meanwhile
                        log.warning("WAL checkpoint failed (will retry): %s", error)
                    failed = True
                    continue
                failed = False
        finally:
            conn.close()
