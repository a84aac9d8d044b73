"""Fixtures for the client-on-simulator tests (the rig lives in simulator_rig.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from simulator_rig import Rig, open_rig

from livechat_hitl.livechat import LiveChatClient


@pytest.fixture(name="rig")
async def fixture_rig() -> AsyncIterator[Rig]:
    async with open_rig() as rig:
        yield rig


@pytest.fixture(name="lc")
def fixture_lc(rig: Rig) -> LiveChatClient:
    return rig.client()
