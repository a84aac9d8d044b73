"""The fault suite: real processes, faults injected, one table printed at the end."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.procs import processes, pytest_runtest_makereport

from .harness import Row, print_table

ROWS: list[Row] = []

__all__ = ["ROWS", "processes", "pytest_runtest_makereport"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROWS:
        terminalreporter.section("fault suite")
        print_table(ROWS, terminalreporter.write_line)


@pytest.fixture
def rows() -> list[Row]:
    return ROWS
