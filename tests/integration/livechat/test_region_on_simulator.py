"""`X-Region` from the token prefix, and the one retry on `misdirected_request`.

The simulator refuses any `X-Region` other than its own region with `misdirected_request`
naming that region, so a call that succeeds is proof of the header that arrived; `rig.sent`
shows the headers as they left the client.
"""

from __future__ import annotations

import pytest
from simulator_rig import open_rig, sim_config

from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import message_event

FRA_PAT = "fra:sandbox-pat-in-frankfurt-00000"


def regions(rig, action: str) -> list[str | None]:
    return [headers.get("x-region") for headers in rig.headers_of(action)]


async def test_a_fra_pat_sends_x_region_fra_on_every_api():
    async with open_rig(sim_config(pat=FRA_PAT, region="fra")) as rig:
        lc = rig.client()
        assert lc.region == "fra"
        started = await lc.agent.start_chat()
        assert await lc.configuration.list_groups()
        session = await rig.new_customer(lc)
        assert session.access_token.get_secret_value().startswith("fra:")
        await lc.agent.add_user_to_chat(started.chat_id, session.customer_id, "customer")
        await lc.customer(session).send_event(started.chat_id, message_event("hallo"))

        assert regions(rig, "start_chat") == ["fra"]
        assert regions(rig, "list_groups") == ["fra"]
        assert regions(rig, "send_event") == ["fra"]  # the customer token's prefix


async def test_a_fra_pat_against_a_dal_license_is_redirected_once_and_remembered():
    async with open_rig(sim_config(pat=FRA_PAT, region="dal")) as rig:
        lc = rig.client()
        first = await lc.agent.start_chat()
        assert regions(rig, "start_chat") == ["fra", "dal"]
        assert lc.region == "dal"

        await lc.agent.get_chat(first.chat_id)
        assert regions(rig, "get_chat") == ["dal"]  # no second detour


async def test_a_misdirected_answer_is_retried_in_the_named_region_and_remembered():
    # A PAT without a region prefix sends no X-Region, until LiveChat names one.
    async with open_rig(sim_config(pat="plain-pat-no-region-000000", region="fra")) as rig:
        lc = rig.client()
        assert lc.region is None
        rig.sim.inject_fault("misdirected", region="fra")
        assert await lc.agent.list_routing_statuses()
        assert regions(rig, "list_routing_statuses") == [None, "fra"]
        assert lc.region == "fra"

        # Simulator side: a misdirected fault only answers requests not naming its
        # region. The client now says fra, so this one stays pending.
        rig.sim.inject_fault("misdirected", region="fra", method="list_chats")
        await lc.agent.list_chats()
        assert regions(rig, "list_chats") == ["fra"]
        assert [f.kind for f in rig.sim.core.faults.pending] == ["misdirected"]


async def test_the_misdirected_retry_happens_only_once():
    async with open_rig(sim_config(pat=FRA_PAT, region="dal")) as rig:
        lc = rig.client()
        # After the first redirect to dal, LiveChat would send the call on to syd.
        rig.sim.inject_fault("misdirected", region="syd", method="list_chats")
        with pytest.raises(e.MisdirectedRequestError) as caught:
            await lc.agent.list_chats()
        assert (caught.value.region, caught.value.retryable) == ("syd", True)
        assert regions(rig, "list_chats") == ["fra", "dal"]
