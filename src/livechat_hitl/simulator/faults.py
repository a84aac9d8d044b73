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

    def take(self, method: str, region: str | None = None) -> Fault | None:
        for fault in self.pending:
            if fault.method not in (None, "*", method) or fault.remaining <= 0:
                continue
            if fault.kind == "misdirected" and region == fault.region:
                # LiveChat answers misdirected_request to a request that reached the wrong
                # region and names the right one in `data.region` (LIVECHAT-API §1.5); a
                # request that already says `X-Region: <that region>` is not misdirected,
                # so it goes through and leaves the fault for a request that is.
                continue
            fault.remaining -= 1
            if fault.remaining == 0:
                self.pending.remove(fault)
            return fault
        return None

    async def apply(self, method: str, region: str | None = None) -> None:
        """Raise the error of the next matching fault (after hanging, for `hang`).

        `region` is the request's `X-Region`: a `misdirected` fault only answers requests
        that do not already name its region.
        """
        fault = self.take(method, region)
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
