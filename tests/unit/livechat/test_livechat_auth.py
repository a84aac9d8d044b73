"""Agent credentials: console token, account + PAT, bearer; regions; secrets masked."""

from __future__ import annotations

import base64

import pytest
from livechat_fakes import ACCOUNT_ID, PAT

from livechat_hitl.livechat import AgentCredentials, AuthScheme, CredentialsError


def _console_token(account_id: str, pat: str) -> str:
    return base64.b64encode(f"{account_id}:{pat}".encode()).decode()


def test_console_token_is_sent_as_is_with_basic():
    token = _console_token(ACCOUNT_ID, PAT)
    credentials = AgentCredentials.from_agent_token(token)
    assert credentials.authorization() == f"Basic {token}"
    assert credentials.scheme is AuthScheme.BASIC
    assert credentials.account_id == ACCOUNT_ID


def test_console_token_region_comes_from_the_pat_inside():
    assert AgentCredentials.from_agent_token(_console_token(ACCOUNT_ID, "fra:abc")).region == "fra"
    assert AgentCredentials.from_agent_token(_console_token(ACCOUNT_ID, "dal:abc")).region == "dal"
    assert AgentCredentials.from_agent_token(_console_token(ACCOUNT_ID, "abcdef")).region is None


def test_account_and_pat_are_encoded_like_the_console():
    credentials = AgentCredentials.from_pat(ACCOUNT_ID, PAT)
    assert credentials.authorization() == f"Basic {_console_token(ACCOUNT_ID, PAT)}"
    assert credentials.region == "fra"
    assert credentials.is_personal_access_token


def test_pasted_token_with_whitespace_is_accepted():
    token = _console_token(ACCOUNT_ID, PAT)
    assert AgentCredentials.from_agent_token(f"  {token}\n").authorization() == f"Basic {token}"


@pytest.mark.parametrize("bad", ["not base64 at all!", base64.b64encode(b"no-colon").decode(), ""])
def test_malformed_console_token_is_refused_without_echoing_it(bad):
    with pytest.raises(CredentialsError) as caught:
        AgentCredentials.from_agent_token(bad)
    if bad:
        assert bad not in str(caught.value)


def test_bearer_token_keeps_its_prefix_and_region():
    credentials = AgentCredentials.from_bearer("dal:oauth-token-xyz")
    assert credentials.authorization() == "Bearer dal:oauth-token-xyz"
    assert credentials.region == "dal"
    assert not credentials.is_personal_access_token
    assert AgentCredentials.from_bearer("Bearer fra-a:t").authorization() == "Bearer fra-a:t"
    assert AgentCredentials.from_bearer("eyJhbGciOi.jwt.sig").region is None


def test_secrets_never_show_in_repr_or_str():
    credentials = AgentCredentials.from_pat(ACCOUNT_ID, PAT)
    encoded = _console_token(ACCOUNT_ID, PAT)
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert PAT not in text
        assert encoded not in text
        assert "PAT-SECRET" not in text
