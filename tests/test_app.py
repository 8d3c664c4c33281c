"""The composition root: what it hands the layers from the configuration."""

from __future__ import annotations

import asyncio

import pytest

from bridge.app import Bridge, agent_name
from bridge.config import Config


@pytest.mark.parametrize(
    ("user_agent", "agent"),
    [
        ("spaces-bridge", "spaces-bridge"),
        ("spaces-bridge/2.1 (Linux)", "spaces-bridge"),
        ("  Bridge 7", "Bridge"),
        ("", "-"),
        ("/2.1", "-"),
        ("a@b", "-"),  # not a token: no Warning could carry it
    ],
)
def test_agent_name_is_the_product_token_of_the_user_agent(user_agent: str, agent: str) -> None:
    assert agent_name(user_agent) == agent


def test_the_sip_stack_is_named_by_the_configured_user_agent() -> None:
    async def build() -> Bridge:
        return Bridge(Config(), asyncio.get_running_loop())

    # The SIP core's own default is "-": the product name comes from [sip] user_agent only.
    assert asyncio.run(build()).endpoint.config.agent == "spaces-bridge"
