"""LiveChat simulator: a stand-in for LiveChat's Agent, Customer, Configuration and
accounts APIs and its webhooks, faithful enough to test the gateway against.

It imports only `livechat_hitl.livechat.wire` from the product, never the gateway.
"""

from .app import Simulator, create_simulator
from .config import Clock, ConfigError, SimulatorConfig

__all__ = ["Clock", "ConfigError", "Simulator", "SimulatorConfig", "create_simulator"]
