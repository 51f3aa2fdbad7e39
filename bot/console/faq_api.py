"""The console's FAQ learning API: "add this phrasing to entry X", in one click.

    GET  /api/console/faq/{shop}/learn?lang=zh|en
         what customers asked that the FAQ could learn from, for the FAQ page:
           * ``tapped``: a question the bot answered with "did you mean" buttons, and the entry the
             customer then tapped (read from the transcript: the customer's text, then their
             ``faq:<id>`` button in the same chat), with how often;
           * ``unanswered``: near-duplicate unanswered questions grouped, with counts and the
             matcher's likeliest entries (staff pick the one they answered with);
         plus the shop's entries (id and a label) and the page's strings. Any staff member who
         may see the shop; ``can_add`` says whether this account may add (admins only).
    POST /api/console/faq/{shop}/phrasing {entry, text, source: "tapped"|"unanswered"|"staff"}
         admin only, CSRF token required (header ``X-CSRF-Token``), as every console change.
         Writes the phrasing under the entry's ``questions:`` in the shop's FAQ file keeping its
         comments, key order and quoting (faq/learn.py: a ruamel.yaml round trip, then the
         result is validated by the loader the server uses and only then replaces the file
         atomically), hot-reloads the shop at once (faq/registry.py) and records
         ``faq.phrasing_added`` in the audit trail (core/audit.py; the details name the entry,
         the file and the source, never the customer's words: the file holds those).

Bad input is a 400 naming the field (``entry``, ``text``, ``source``); a phrasing that looks
like it carries a phone number is refused (it would be published in the FAQ file); a file
that does not validate after the edit is a 400 listing FILE:LINE: reason and nothing is
written. Registered by bot/console/__init__.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.api import SERVICES_KEY, bad, json_error, text_field
from bot.bootstrap import Services
from bot.console.api import _body, _json, _shop
from bot.console.auth import check_csrf, check_shop, require_session
from bot.console.views import relative_name
from core import audit, faq_log
from core.results import Actor
from faq import FaqMatcher, group_unanswered
from faq.learn import MAX_PHRASING
from faq.normalize import normalize

_ENTRY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_PHONE = re.compile(r"\d[\d\s-]{6,}\d")  # 8+ digits in a row (spaces/dashes allowed): a phone number
SOURCES = ("tapped", "unanswered", "staff")
TAPPED_DAYS = 90  # how far back the transcript is read for tapped suggestions
TAPPED_ROWS = 20_000  # and at most this many customer messages
LIST_LIMIT = 30

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "从聊天中学习",
        "hint": "把顾客的说法加到一个条目里，下次同样的问题会直接回答"
                "（写入该店的 FAQ 文件，保留注释和顺序，立即生效）。",
        "tapped": "顾客点选了“您是想问”的建议",
        "unanswered": "没答上的问题",
        "question": "顾客的问题",
        "asked": "次数",
        "entry": "加到条目",
        "add": "添加这个说法",
        "added": "已添加到 {entry}，已生效。",
        "already": "{entry} 已有这个说法。",
        "failed": "没有添加：",
        "none": "暂时没有可学习的问题。",
        "admin_only": "只有管理员可以添加说法。",
    },
    "en": {
        "title": "Learn from chats",
        "hint": "Add a customer's wording to an entry so the same question is answered next time "
                "(written into the shop's FAQ file, comments and order kept, live at once).",
        "tapped": "Customers tapped a \u201cdid you mean\u201d suggestion",
        "unanswered": "Questions the FAQ did not answer",
        "question": "Customer's question",
        "asked": "Asked",
        "entry": "Add to entry",
        "add": "Add this phrasing",
        "added": "Added to {entry}; live now.",
        "already": "{entry} already has this phrasing.",
        "failed": "Not added:",
        "none": "Nothing to learn from yet.",
        "admin_only": "Only admins can add phrasings.",
    },
}


def _matcher(services: Services, shop_id: str) -> FaqMatcher:
    matcher = services.faq.get(shop_id) if services.faq else None
    if matcher is None:
        raise json_error(404, "no_faq", f"no FAQ serves shop '{shop_id}'", field="shop")
    return matcher


def _label(entry: Any, lang: str) -> str:
    """An entry as staff recognise it: its first sample question in the page's language."""
    def chinese(text: str) -> bool:
        return any("\u4e00" <= ch <= "\u9fff" for ch in text)

    questions = list(entry.questions)
    preferred = [q for q in questions if chinese(q) == (lang == "zh")]
    first = (preferred or questions or [entry.id])[0]
    return f"{entry.id} · {first}"[:120]


def _learnable(matcher: FaqMatcher) -> Callable[[str, str], bool]:
    """An entry the FAQ still has, and a phrasing it does not know yet."""

    def learnable(entry_id: str, text: str) -> bool:
        entry = matcher.faq.entry(entry_id)
        return entry is not None and not any(normalize(q) == normalize(text) for q in entry.questions)

    return learnable


async def tapped_suggestions(services: Services, shop_id: str, matcher: FaqMatcher) -> list[dict[str, Any]]:
    """(question, tapped entry, count), most frequent first; pairs the entry already knows are left out."""
    since = services.clock.now() - timedelta(days=TAPPED_DAYS)
    tapped = await faq_log.tapped_suggestions(
        services.db, shop_id, since, learnable=_learnable(matcher), rows=TAPPED_ROWS, limit=LIST_LIMIT
    )
    return [{"text": t.text, "entry": t.entry, "count": t.count} for t in tapped]


async def learn_view(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    shop_id = request.match_info["shop"]
    check_shop(session, shop_id)
    _shop(services, shop_id)
    lang = request.query.get("lang") or session.account.language or "zh"
    lang = lang if lang in STRINGS else "zh"
    matcher = _matcher(services, shop_id)
    unanswered = []
    for group in group_unanswered(await faq_log.unanswered(services.db, shop_id, limit=200))[:LIST_LIMIT]:
        candidates = [c.id for c in matcher.scores(group.text)[:3]]
        unanswered.append({"text": group.text, "count": group.count, "variants": list(group.variants),
                           "candidates": candidates})
    return _json({
        "shop": shop_id,
        "can_add": session.account.is_admin,
        "entries": [{"id": e.id, "label": _label(e, lang)} for e in matcher.faq.entries],
        "tapped": await tapped_suggestions(services, shop_id, matcher),
        "unanswered": unanswered,
        "strings": STRINGS[lang],
    })


async def add_phrasing_view(request: web.Request) -> web.Response:
    session = await require_session(request)
    check_csrf(request, session)
    services = request.app[SERVICES_KEY]
    shop_id = request.match_info["shop"]
    check_shop(session, shop_id)
    if not session.account.is_admin:
        raise json_error(403, "admin_only", "only admins may change FAQ files")
    _shop(services, shop_id)
    data = await _body(request)
    entry_id = text_field(data, "entry", max_len=80, required=True)
    if not _ENTRY_ID.match(entry_id):
        raise bad("entry", "must be an entry id (letters, digits, _ . -)")
    text = " ".join(text_field(data, "text", max_len=MAX_PHRASING, required=True).split())
    if not text:
        raise bad("text", "is required", "missing_parameter")
    if _PHONE.search(text):
        raise bad("text", "looks like it contains a phone number; FAQ files are shared, write it without")
    source = text_field(data, "source", max_len=20, default="staff")
    if source not in SOURCES:
        raise bad("source", f"must be one of {', '.join(SOURCES)}")
    matcher = _matcher(services, shop_id)
    if matcher.faq.entry(entry_id) is None:
        raise bad("entry", f"no entry '{entry_id}' in this shop's FAQ", "unknown_entry")
    assert services.faq is not None
    result = services.faq.add_phrasing(shop_id, entry_id, text)
    if not result.ok:
        return _json({"ok": False, "errors": [str(e) for e in result.errors]}, status=400)
    status = services.faq.status(shop_id)
    file = relative_name(status.file) if status is not None else ""
    if result.added:
        async with services.db.transaction() as s:
            audit.record(
                s,
                shop_id=shop_id,
                customer_id=None,
                actor=Actor.staff(session.account.username),
                now=services.clock.now(),
                action="faq.phrasing_added",
                subject="faq",
                entry=entry_id,
                file=file,
                source=source,
                chars=len(text),
            )
    entry = _matcher(services, shop_id).faq.entry(entry_id)
    return _json({"ok": True, "added": result.added, "entry": entry_id, "file": file,
                  "questions": len(entry.questions) if entry else 0})


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/console/faq/{shop}/learn", learn_view)
    r.add_post("/api/console/faq/{shop}/phrasing", add_phrasing_view)
