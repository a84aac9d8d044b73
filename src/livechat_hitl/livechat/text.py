"""Text shaping for LiveChat: transcripts for agents, splitting under the 16 KB limit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from livechat_hitl.domain.models import Handoff, TranscriptLine
from livechat_hitl.livechat.wire import MAX_MESSAGE_TEXT_BYTES

# Leave headroom under the limit for JSON escaping on LiveChat's side.
CHUNK_BYTES = MAX_MESSAGE_TEXT_BYTES - 512


def split_text(text: str, limit: int = CHUNK_BYTES) -> list[str]:
    """Pieces of `text`, each at most `limit` UTF-8 bytes, cut at line or word ends
    where possible and never inside a character."""
    if len(text.encode()) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while rest:
        encoded = rest.encode()
        if len(encoded) <= limit:
            pieces.append(rest)
            break
        head = encoded[:limit].decode(errors="ignore")  # drops a cut multi-byte char
        cut = max(head.rfind("\n"), head.rfind(" "))
        if cut < len(head) // 2:
            cut = len(head)
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n") if cut < len(head) else rest[cut:]
    return [p for p in pieces if p]


def _line(line: TranscriptLine) -> str:
    who = "User" if line.role == "user" else "Bot"
    when = f" [{line.at.strftime('%H:%M:%S')}]" if line.at else ""
    return f"{who}{when}: {line.text}"


def transcript_texts(handoff: Handoff) -> list[str]:
    """The agent-facing header and transcript, packed into messages under the limit."""
    header = ["Conversation handed over by the bot."]
    if handoff.title:
        header.append(f"Title: {handoff.title}")
    if handoff.description:
        header.append(f"Description: {handoff.description}")
    if handoff.user.name or handoff.user.email:
        who = " ".join(
            x
            for x in (handoff.user.name, f"<{handoff.user.email}>" if handoff.user.email else None)
            if x
        )
        header.append(f"Customer: {who}")
    lines = ["\n".join(header)]
    if handoff.transcript:
        lines.append("Transcript:")
        lines.extend(_line(t) for t in handoff.transcript)
    return list(_pack(lines))


def _pack(lines: Iterable[str], limit: int = CHUNK_BYTES) -> Iterator[str]:
    current: list[str] = []
    size = 0
    for line in lines:
        for piece in split_text(line, limit):
            cost = len(piece.encode()) + 1
            if current and size + cost > limit:
                yield "\n".join(current)
                current, size = [], 0
            current.append(piece)
            size += cost
    if current:
        yield "\n".join(current)
