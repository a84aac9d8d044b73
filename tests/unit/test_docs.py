"""The README documents what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from livechat_hitl.cli import app
from livechat_hitl.config import Settings, env_name

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_readme_names_every_configuration_variable() -> None:
    missing = [env_name(n) for n in Settings.model_fields if f"`{env_name(n)}`" not in README]
    assert missing == []


def test_readme_names_no_variable_the_code_does_not_read() -> None:
    known = {env_name(n) for n in Settings.model_fields} | {"HITL_TEST_POSTGRES_URL"}
    mentioned = set(re.findall(r"HITL_[A-Z_]+[A-Z]", README))
    assert mentioned - known == set()


def test_readme_lists_every_command() -> None:
    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    groups = {g.name for g in app.registered_groups}
    for name in commands | groups:
        assert f"livechat-hitl {name}" in README, name


def test_readme_opens_with_the_two_setup_commands() -> None:
    setup = README.split("## Set up", 1)[1].split("##", 1)[0]
    assert "make run" in setup
    assert "make test" in setup
