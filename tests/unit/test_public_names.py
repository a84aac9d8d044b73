"""The package's public names are deliberate: adding or removing one is a decision."""

import livechat_hitl

PUBLIC = {"HitlApiError", "HitlClient", "WebhookVerificationError", "__version__", "verify_webhook"}


def test_public_names_do_not_drift() -> None:
    assert set(livechat_hitl.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(livechat_hitl, name), name
