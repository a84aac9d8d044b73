"""The e2e tier: `livechat-hitl` commands as real processes on loopback ports."""

from .procs import processes, pytest_runtest_makereport

__all__ = ["processes", "pytest_runtest_makereport"]
