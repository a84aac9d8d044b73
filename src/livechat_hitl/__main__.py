"""`python -m livechat_hitl …` is the `livechat-hitl` command."""

from livechat_hitl.cli import main

main()
