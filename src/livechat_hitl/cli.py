"""The `livechat-hitl` command line.

Each command is thin: it reads configuration, then hands over to the module that owns
the work, imported lazily so `--help` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="livechat-hitl",
    help="Human-in-the-loop gateway between chatbots and LiveChat agents.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def simulator() -> None:
    """Run only the LiveChat simulator (HITL_SIMULATOR_PORT, default 8090)."""
    from livechat_hitl.simulator.server import run_from_env

    raise typer.Exit(run_from_env())


def main() -> None:
    app()
