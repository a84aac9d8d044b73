"""Schemathesis over the gateway's own OpenAPI document, every check on.

Runs the schemathesis CLI against a real sandbox process (gateway + simulator): no answer
may be a 500, every answer must match the documented status codes, content types and
schemas, and invalid input must be rejected. The CLI's summary (operations and the
number of generated cases) is printed for the CI log.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

API_KEY = "sandbox-key"
MAX_EXAMPLES = 40


def test_api_conforms_to_its_schema(
    sandbox_url: str, tmp_path: Path, summary: Callable[[str], None]
) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(Path(__file__).parent / "schemathesis.toml"),
            "run",
            f"{sandbox_url}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {API_KEY}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20261124",
            "--workers",
            "1",
            # SSE never ends and the LiveChat door is LiveChat's, not a bot's: both are
            # covered by their own tests (integration, hypothesis).
            "--exclude-path",
            "/v1/events",
            "--exclude-path",
            "/livechat/webhooks",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    print(result.stdout[-6000:])
    print(result.stderr[-2000:])
    for line in result.stdout.splitlines():
        if re.search(r"\d+ generated", line) or line.strip().startswith(("Selected:", "Tested:")):
            summary(f"schemathesis: {line.strip()}")
    assert result.returncode == 0, "schemathesis found failures (see output above)"
