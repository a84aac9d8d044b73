"""The browser tier: the sandbox as a real process, driven through Debian's chromium."""

from e2e.procs import processes, pytest_runtest_makereport

__all__ = ["processes", "pytest_runtest_makereport"]
