"""Shop news: a notice to every customer who opted in, in their language, through the outbox
(``chatbook notice send``); customers opt in and out in chat (``subscribe``, for the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.customers import CustomerDirectory, notice_audience
from core.i18n import texts
from core.messages import OutgoingMessage

if TYPE_CHECKING:
    from bot.bootstrap import Services


@dataclass(frozen=True)
class NoticeSent:
    sent: int  # customers it was queued for
    skipped: int  # opted in but with no chat to write to


async def send_notice(services: Services, shop_id: str, zh: str, en: str | None = None) -> NoticeSent:
    """Queue the notice (``en`` for English speakers, else the Chinese text) with the footer that
    says how to stop them."""
    sent = skipped = 0
    for customer_id, language in await notice_audience(services.db, shop_id):
        conv = await services.store.latest_conversation(shop_id, customer_id)
        if conv is None:
            skipped += 1
            continue
        body = en if language == "en" and en else zh
        footer = texts(language).t("notices.footer")
        await services.store.enqueue(conv, OutgoingMessage(f"{body}\n\n{footer}"), author="notice")
        sent += 1
    return NoticeSent(sent, skipped)


async def subscribe(customers: CustomerDirectory, customer_id: int, wanted: bool) -> str:
    """Opt in (``wanted``) or out of the shop's news; returns the catalog key of the answer."""
    await customers.update(customer_id, notices=wanted)
    return "notices.subscribed" if wanted else "notices.unsubscribed"
