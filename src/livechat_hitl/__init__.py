"""livechat-hitl: a human-in-the-loop gateway between chatbots and LiveChat agents."""

__version__ = "0.1.0"

__all__ = ["__version__"]
