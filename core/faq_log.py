"""What the FAQ could not answer, and what customers tapped instead: the rows the shop's FAQ
review reads (the console's FAQ page, `chatbook faq unanswered`, the reports).

The engine records an unanswered question in the turn's unit of work (one prepared statement);
the console and the CLI read them grouped by their normalised text, most frequent first. A "did
you mean" tap is read back from the transcript: the customer's text, then their ``faq:<id>``
button in the same chat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select

from core.db import Database, prepared_insert
from core.models import Conversation, TranscriptEntry, UnansweredQuestion

_UNANSWERED_IN = prepared_insert(
    cast(Table, UnansweredQuestion.__table__), ("shop_id", "text", "normalized", "best_entry", "score", "at")
)


async def record_unanswered(
    db: Database, shop_id: str, text: str, normalized: str, best: str | None, score: int, at: datetime
) -> None:
    """Kept for the shop's FAQ review, in the turn's unit of work (one statement)."""
    row = {"shop_id": shop_id, "text": text[:500], "normalized": normalized[:500], "best_entry": best, "score": score}
    async with db.unit_of_work() as uow:
        await uow.run(_UNANSWERED_IN, {**row, "at": at})


async def unanswered(db: Database, shop_id: str, limit: int = 50) -> list[tuple[str, int]]:
    """What customers asked that the FAQ could not answer (one text per normalised question, with
    how often), most frequent first."""
    async with db.reading() as s:
        rows = await s.execute(
            select(UnansweredQuestion.normalized, func.count(), func.max(UnansweredQuestion.text))
            .where(UnansweredQuestion.shop_id == shop_id)
            .group_by(UnansweredQuestion.normalized)
            .order_by(func.count().desc(), UnansweredQuestion.normalized)
            .limit(limit)
        )
        return [(text, int(count)) for _, count, text in rows]


@dataclass(frozen=True)
class Tapped:
    """A customer's question followed by their tap on an FAQ entry's button, and how often."""

    text: str
    entry: str
    count: int


async def tapped_suggestions(
    db: Database, shop_id: str, since: datetime, *, learnable: Callable[[str, str], bool], rows: int, limit: int
) -> list[Tapped]:
    """(question, tapped entry, count) from the last ``rows`` customer lines since ``since``, most
    frequent first; ``learnable(entry_id, question)`` leaves out pairs the FAQ cannot take (an
    entry it no longer has, a phrasing it already knows)."""
    async with db.reading() as s:
        result = await s.execute(
            select(TranscriptEntry.conversation_id, TranscriptEntry.text, TranscriptEntry.payload)
            .join(Conversation, Conversation.id == TranscriptEntry.conversation_id)
            .where(Conversation.shop_id == shop_id, TranscriptEntry.direction == "in", TranscriptEntry.at >= since)
            .order_by(TranscriptEntry.id.desc())
            .limit(rows)
        )
        found: list[Any] = list(result)
    found.reverse()  # oldest first, so "the message before the tap" is the previous row
    counts: dict[tuple[str, str], int] = {}
    last_text: dict[int, str] = {}
    for conversation_id, text, payload in found:
        pressed = payload.get("payload") if isinstance(payload, dict) else None
        if isinstance(pressed, str) and pressed.startswith("faq:"):
            question = last_text.pop(conversation_id, None)
            entry_id = pressed[4:]
            if question and learnable(entry_id, question):
                counts[(question, entry_id)] = counts.get((question, entry_id), 0) + 1
        elif pressed is None and text:
            last_text[conversation_id] = text
        else:
            last_text.pop(conversation_id, None)  # another button: the question was answered otherwise
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Tapped(text, entry_id, count) for (text, entry_id), count in ordered[:limit]]
