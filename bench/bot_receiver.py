"""The bot's webhook endpoint, as its own process: checks every Standard Webhooks
signature and remembers when each event arrived.

`POST /hooks` takes deliveries (400 on a bad signature, counted). The benchmark reads
what arrived through `GET /_bench/...`: a summary, the arrival times of the
`handoff.message` events of one run tag (text `bench <tag> <seq>`), and the handoffs
whose `handoff.started` / `handoff.assigned` arrived.

Run: `python -m bench.bot_receiver PORT` with the secret in `BENCH_BOT_SECRET`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from standardwebhooks.webhooks import Webhook

from bench.baseline_app import Receive, Scope, Send


class Receiver:
    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.bad_signatures = 0
        self.deliveries = 0
        self.types: Counter[str] = Counter()
        self.webhook_ids: Counter[str] = Counter()
        # run tag -> seq -> arrival times (more than one: a duplicate)
        self.messages: dict[str, dict[int, list[float]]] = defaultdict(dict)
        # event type -> handoff id -> first arrival time
        self.lifecycle: dict[str, dict[str, float]] = defaultdict(dict)

    def record(self, body: bytes, headers: dict[str, str]) -> int:
        arrived = time.time()
        try:
            self.verifier.verify(body, headers)
        except Exception:
            self.bad_signatures += 1
            return 400
        event = json.loads(body)
        self.deliveries += 1
        self.webhook_ids[headers.get("webhook-id", "")] += 1
        kind = event.get("type", "")
        self.types[kind] += 1
        if kind == "handoff.message":
            text = event.get("data", {}).get("message", {}).get("text") or ""
            parts = text.split(" ")
            if len(parts) == 3 and parts[0] == "bench":
                self.messages[parts[1]].setdefault(int(parts[2]), []).append(arrived)
        else:
            self.lifecycle[kind].setdefault(event.get("handoff_id", ""), arrived)
        return 200

    def summary(self) -> dict[str, Any]:
        return {
            "deliveries": self.deliveries,
            "bad_signatures": self.bad_signatures,
            "duplicate_webhook_ids": sum(1 for n in self.webhook_ids.values() if n > 1),
            "types": dict(self.types),
        }

    def view(self, path: str, query: dict[str, list[str]]) -> Any:
        if path == "/_bench/summary":
            return self.summary()
        if path == "/_bench/count":
            tag = query.get("tag", [""])[0]
            return {"count": len(self.messages.get(tag, {}))}
        if path == "/_bench/messages":
            tag = query.get("tag", [""])[0]
            return {str(seq): times for seq, times in self.messages.get(tag, {}).items()}
        if path == "/_bench/lifecycle":
            kind = query.get("type", [""])[0]
            return self.lifecycle.get(kind, {})
        return None


def make_app(receiver: Receiver) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        path = scope["path"]
        if scope["method"] == "POST" and path == "/hooks":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            status, body = receiver.record(b"".join(chunks), headers), b"{}"
        else:
            found = receiver.view(path, parse_qs(scope.get("query_string", b"").decode()))
            status, body = (404, b"{}") if found is None else (200, json.dumps(found).encode())
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port = int(sys.argv[1])
    receiver = Receiver(os.environ["BENCH_BOT_SECRET"])
    uvicorn.run(
        make_app(receiver), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )


if __name__ == "__main__":
    main()
