"""Use cases: what bots and LiveChat ask of the gateway, as store transactions."""
