"""Fault injection: the next N calls of a method (or any) fail the way LiveChat can."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from .errors import SimError

FaultKind = Literal["429", "500", "503", "hang", "misdirected"]


@dataclass
class Fault:
    kind: FaultKind
    method: str | None
    remaining: int
    retry_after: int = 1
    region: str = "fra"
    hang_seconds: float = 30.0


class Faults:
    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def add(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        method: str | None = None,
        retry_after: int = 1,
        region: str = "fra",
        hang_seconds: float = 30.0,
    ) -> Fault:
        if kind not in ("429", "500", "503", "hang", "misdirected"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, method, count, retry_after, region, hang_seconds)
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str) -> Fault | None:
        for fault in self.pending:
            if fault.method in (None, "*", method) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.pending.remove(fault)
                return fault
        return None

    async def apply(self, method: str) -> None:
        """Raise the error of the next matching fault (after hanging, for `hang`)."""
        fault = self.take(method)
        if fault is None:
            return
        if fault.kind == "429":
            raise SimError("too_many_requests", headers={"Retry-After": str(fault.retry_after)})
        if fault.kind == "500":
            raise SimError("internal")
        if fault.kind == "503":
            raise SimError("service_unavailable")
        if fault.kind == "misdirected":
            raise SimError("misdirected_request", data={"region": fault.region})
        await asyncio.sleep(fault.hang_seconds)
        raise SimError("request_timeout")
