"""The console's JSON API (under /api/console). Every route needs a session; every change needs
the CSRF token; every shop-scoped route checks the staff member may see that shop (403).

Inbox:      GET  /api/console/me | /inbox?shop= | /conversations/{id}
            POST /conversations/{id}/take | reply {text, image_url?} | note {text} | release
Day:        GET  /api/console/day?shop=&date=YYYY-MM-DD
            POST /bookings {shop, service, date, time, staff?, customer_name, phone?, notes?}
            POST /bookings/{id}/approve | decline | cancel | reschedule {date, time, staff?}
                 | attendance {outcome} | follow_up {text, image_url?}
            POST /time_off {shop, staff, start "YYYY-MM-DD HH:MM", end, reason}
FAQ:        GET  /api/console/faq ;  POST /faq/{shop} (admin; body = the YAML file)

Every input is checked here, at the edge (bot/api.py's helpers): ids are integers in range, dates
within two years of today, times HH:MM, texts typed and bounded -> 400 naming the field. A FAQ
upload is read by faq/loader.py with core/yamlsource's upload rules (no anchors, no control
characters) and then the FAQ rules: a broken file is a 400 listing FILE:LINE: reason, and
nothing is replaced. A manual booking that
is not made leaves no new customer behind.

Each route checks its input, calls one use case of bot/usecases/ (the CLI calls the same ones)
and renders the outcome as JSON; no SQL here.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.api import SERVICES_KEY, bad, int_id, json_error, parse_date, parse_moment, parse_time, text_field
from bot.bootstrap import Services
from bot.console.auth import check_csrf, check_shop, require_session
from bot.console.views import relative_name
from bot.engine.store import ConversationState, HandoffItem
from bot.usecases import Refused, booking_actions, handoff
from bot.usecases.day_view import day_view as bookings_between
from bot.usecases.manual_booking import book_for_customer
from bot.usecases.time_off import record_time_off
from core import faq_log
from core.availability import to_utc
from core.config import WEEKDAYS, ShopConfig
from core.customers import mask_phone
from core.messages import OutgoingMessage
from core.models import TranscriptEntry
from core.results import Actor, Booked, BookingResult, BookingView, NotAllowed, Taken
from core.staff_accounts import Session
from core.yamlsource import YamlSourceError, decode_source
from faq import group_unanswered, parse_faq

MAX_TEXT = 4000
MAX_FAQ_BYTES = 512 * 1024
MAX_URL = 2000


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... a million deep
        raise json_error(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise json_error(400, "bad_json", "the body must be a JSON object")
    return data


def _shop(services: Services, shop_id: str) -> ShopConfig:
    shop = services.config.shops.get(shop_id)
    if shop is None:  # on the account but no longer configured
        raise json_error(404, "unknown_shop", f"no shop '{shop_id[:40]}'", field="shop")
    return shop


def _today(services: Services, shop: ShopConfig) -> date:
    return services.clock.now().astimezone(shop.tz).date()


def _image(data: dict[str, Any]) -> str | None:
    image = data.get("image_url")
    if image is None or image == "":
        return None
    if not isinstance(image, str) or len(image) > MAX_URL or not image.startswith(("https://", "http://", "/media/")):
        raise bad("image_url", "must be an http(s) address", "bad_image")
    return image


async def _changing(request: web.Request) -> tuple[Services, Session]:
    session = await require_session(request)
    check_csrf(request, session)
    return request.app[SERVICES_KEY], session


def _staff_actor(session: Session) -> Actor:
    return Actor.staff(session.account.username)


def _staff(session: Session) -> handoff.Staff:
    return handoff.Staff(session.account.username, session.account.display_name)


def _taken(taken: handoff.Taken) -> web.Response:
    return _json({"ok": False, "error": "taken", "by": taken.by}, status=409)


def _local(services: Services, shop_id: str, moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(services.config.shops[shop_id].tz).isoformat()


def _booking_json(
    services: Services, b: BookingView, names: dict[int, str] | None = None, notes: dict[int, str] | None = None
) -> dict[str, Any]:
    shop = services.config.shops[b.shop_id]
    return {
        "id": b.id,
        "code": b.code,
        "shop": b.shop_id,
        "service": b.service_id,
        "service_name": shop.services[b.service_id].name.model_dump() if b.service_id in shop.services else None,
        "staff": b.staff_id,
        "start": _local(services, b.shop_id, b.start),
        "end": _local(services, b.shop_id, b.end),
        "status": b.status.value,
        "customer_id": b.customer_id,
        "customer": (names or {}).get(b.customer_id or 0, ""),
        "addons": list(b.addons),
        "notes": (notes or {}).get(b.id, ""),  # for staff; the console writes it as text
    }


def _result_json(services: Services, result: BookingResult, shop_id: str) -> web.Response:
    if isinstance(result, Booked):
        return _json({"ok": True, "booking": _booking_json(services, result.booking)})
    if isinstance(result, Taken):
        return _json(
            {
                "ok": False,
                "error": result.reason,
                "alternatives": [
                    {"start": _local(services, shop_id, s.start), "staff": list(s.staff_ids)}
                    for s in result.alternatives
                ],
            },
            status=409,
        )
    assert isinstance(result, NotAllowed)
    return _json({"ok": False, "error": result.reason.value, "message": result.detail}, status=422)


async def _conversation(request: web.Request, session: Session) -> ConversationState:
    conv = await handoff.find(request.app[SERVICES_KEY], int_id(request.match_info["id"]))
    if conv is None:
        raise json_error(404, "not_found", "no such conversation")
    check_shop(session, conv.shop_id)
    return conv


# ----------------------------------------------------------------------------- inbox


async def me(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    account = session.account
    shops = [
        {"id": sid, "name": services.config.shops[sid].name.model_dump()}
        for sid in account.shops
        if sid in services.config.shops
    ]
    return _json(
        {
            "username": account.username,
            "display_name": account.display_name,
            "role": account.role,
            "language": account.language,
            "shops": shops,
            "csrf": session.csrf,
        }
    )


def _item_json(services: Services, item: HandoffItem, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": item.conversation_id,
        "shop": item.shop_id,
        "channel": item.channel,
        "customer_id": item.customer_id,
        "customer": names.get(item.customer_id, ""),
        "mode": item.mode.value,
        "route": item.route,
        "reason": item.reason,
        "since": _local(services, item.shop_id, item.since),
        "waiting_min": handoff.waited_min(item.since, services.clock.now()),
        "assigned_to": item.assigned_to,
        "last_text": item.last_text[:300],
    }


async def inbox(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    shop_id = request.query.get("shop") or (session.account.shops[0] if session.account.shops else "")
    check_shop(session, shop_id)
    _shop(services, shop_id)
    found = await handoff.inbox(services, shop_id)
    return _json(
        {
            "shop": shop_id,
            "waiting": [_item_json(services, i, found.names) for i in found.waiting],
            "recent": [_item_json(services, i, found.names) for i in found.recent],
        }
    )


async def conversation(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    conv = await _conversation(request, session)
    found = await handoff.detail(services, conv)
    customer = found.customer
    return _json(
        {
            "conversation": {
                "id": conv.id,
                "shop": conv.shop_id,
                "channel": conv.channel,
                "mode": conv.mode.value,
                "route": conv.handoff_route,
                "reason": conv.handoff_reason,
                "assigned_to": conv.assigned_to,
                "language": conv.language,
            },
            "transcript": [_entry_json(services, conv.shop_id, e) for e in found.transcript],
            "customer": {
                "id": conv.customer_id,
                "name": customer.display_name if customer else "",
                "phone": mask_phone(customer.phone) if customer else "",
                "language": customer.language if customer else "",
                "notes": customer.notes if customer else "",
                "channels": found.channels,
                "pets": [
                    {"name": p.name, "species": p.species, "breed": p.breed, "size": p.size, "notes": p.notes}
                    for p in (customer.pets if customer else ())
                ],
                "bookings": [_booking_json(services, b) for b in found.bookings],
                "no_shows": found.no_shows,
            },
        }
    )


def _entry_json(services: Services, shop_id: str, e: TranscriptEntry) -> dict[str, Any]:
    buttons = e.payload.get("buttons", []) if e.direction == "out" else []
    return {
        "id": e.id,
        "direction": e.direction,
        "author": e.author,
        "text": e.text,
        "buttons": [b.get("label", "") for b in buttons],
        "image_url": e.payload.get("image_url") if e.direction == "out" else None,
        "at": _local(services, shop_id, e.at),
    }


async def take(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    conv = await _conversation(request, session)
    taken = await handoff.take(services, conv, _staff(session))
    return _taken(taken) if taken is not None else _json({"ok": True})


async def reply(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    conv = await _conversation(request, session)
    data = await _body(request)
    text = text_field(data, "text", max_len=MAX_TEXT)
    image = _image(data)
    if not text and not image:
        raise json_error(400, "empty", "write a message first", field="text")
    sent = await handoff.reply(services, conv, _staff(session), OutgoingMessage(text, image_url=image))
    return _taken(sent) if isinstance(sent, handoff.Taken) else _json({"ok": True, "outbox_id": sent})


async def note(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    conv = await _conversation(request, session)
    text = text_field(await _body(request), "text", max_len=MAX_TEXT)
    if not text:
        raise json_error(400, "empty", "write a note first", field="text")
    await handoff.note(services, conv, _staff(session), text)
    return _json({"ok": True})


async def release(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    conv = await _conversation(request, session)
    await handoff.release(services, conv)
    return _json({"ok": True})


# ----------------------------------------------------------------------------- the day


def _start(services: Services, shop_id: str, day: Any, hhmm: Any) -> datetime:
    shop = _shop(services, shop_id)
    return to_utc(parse_date(day, "date", today=_today(services, shop)), parse_time(hhmm), shop.tz)


def _staff_field(data: dict[str, Any], shop: ShopConfig) -> str | None:
    staff_id = text_field(data, "staff", max_len=60) or None
    if staff_id is not None and staff_id not in shop.staff:
        raise bad("staff", f"unknown staff member '{staff_id}'", "unknown_staff")
    return staff_id


async def day_view(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    shop_id = request.query.get("shop", "")
    check_shop(session, shop_id)
    shop = _shop(services, shop_id)
    today = _today(services, shop)
    first = parse_date(request.query.get("date") or today.isoformat(), "date", today=today)
    days = 7 if request.query.get("week") else 1
    start, end = to_utc(first, 0, shop.tz), to_utc(first + timedelta(days=days), 0, shop.tz)
    found = await bookings_between(services, shop_id, start, end)
    return _json(
        {
            "shop": shop_id,
            "date": first.isoformat(),
            "days": days,
            "timezone": shop.timezone,
            "staff": [
                {
                    "id": sid,
                    "name": m.name.model_dump(),
                    "role": m.role,
                    "shifts": {
                        (first + timedelta(days=k)).isoformat(): [
                            str(r) for r in m.shifts.get(WEEKDAYS[(first + timedelta(days=k)).weekday()], [])
                        ]
                        for k in range(days)
                    },
                }
                for sid, m in shop.staff.items()
            ],
            "opening_hours": {
                (first + timedelta(days=k)).isoformat(): [str(r) for r in shop.hours_on(first + timedelta(days=k))]
                for k in range(days)
            },
            "services": [
                {"id": sid, "name": svc.name.model_dump(), "duration_min": svc.duration_min}
                for sid, svc in shop.services.items()
            ],
            "bookings": [_booking_json(services, b, found.names, found.notes) for b in found.bookings],
            "pending": [_booking_json(services, b, found.names, found.notes) for b in found.pending],
        }
    )


async def manual_booking(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    data = await _body(request)
    shop_id = text_field(data, "shop", max_len=40, required=True)
    check_shop(session, shop_id)
    shop = _shop(services, shop_id)
    name = text_field(data, "customer_name", max_len=100)
    phone = text_field(data, "phone", max_len=40) or None
    if not name:
        raise json_error(400, "missing_name", "the customer's name is needed", field="customer_name")
    service_id = text_field(data, "service", max_len=60, required=True)
    if service_id not in shop.services:
        raise bad("service", f"unknown service '{service_id}'", "unknown_service")
    start = _start(services, shop_id, data.get("date"), data.get("time"))
    staff_id = _staff_field(data, shop)
    notes = text_field(data, "notes", max_len=500)
    # Everything is checked before a customer exists (the use case makes the customer and the
    # booking in one unit of work, so a booking not made leaves nobody behind).
    actor = _staff_actor(session)
    result = await book_for_customer(
        services, shop_id, service_id, start, actor, name=name, phone=phone, staff_id=staff_id, notes=notes
    )
    return _result_json(services, result, shop_id)


async def booking_action(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    booking_id = int_id(request.match_info["id"])
    action = request.match_info["action"]
    if action not in booking_actions.ACTIONS:
        raise json_error(404, "not_found", f"unknown action '{action[:40]}'")
    shop_id = await booking_actions.shop_of(services, booking_id)
    if shop_id is None:
        raise json_error(404, "not_found", "no such booking")
    check_shop(session, shop_id)
    data = await _body(request) if request.can_read_body else {}
    actor = _staff_actor(session)
    result: BookingResult
    if action == "approve":
        result = await booking_actions.approve(services, shop_id, booking_id, actor)
    elif action == "decline":
        reason = text_field(data, "reason", max_len=200)
        result = await booking_actions.decline(services, shop_id, booking_id, actor, reason)
    elif action == "cancel":
        reason = text_field(data, "reason", max_len=200)
        result = await booking_actions.cancel(services, shop_id, booking_id, actor, reason)
    elif action == "reschedule":
        start = _start(services, shop_id, data.get("date"), data.get("time"))
        staff_id = _staff_field(data, _shop(services, shop_id))
        result = await booking_actions.reschedule(services, shop_id, booking_id, start, actor, staff_id=staff_id)
    elif action == "attendance":
        outcome = text_field(data, "outcome", max_len=20, required=True)
        result = await booking_actions.mark_attendance(services, shop_id, booking_id, outcome, actor)
    else:  # follow_up
        return await _follow_up(services, session, shop_id, booking_id, data)
    return _result_json(services, result, shop_id)


async def _follow_up(
    services: Services, session: Session, shop_id: str, booking_id: int, data: dict[str, Any]
) -> web.Response:
    text = text_field(data, "text", max_len=MAX_TEXT)
    image = _image(data)
    if not text:
        raise json_error(400, "empty", "write the follow-up first", field="text")
    sent = await booking_actions.follow_up(
        services, shop_id, booking_id, session.account.username, OutgoingMessage(text, image_url=image)
    )
    if isinstance(sent, booking_actions.NoChat):
        if sent.reason == "no_customer":
            raise json_error(422, "no_customer", "this booking has no customer to write to")
        raise json_error(422, "no_channel", "the customer has no chat with us: call them instead")
    return _json({"ok": True, "outbox_id": sent})


async def time_off(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    data = await _body(request)
    shop_id = text_field(data, "shop", max_len=40, required=True)
    check_shop(session, shop_id)
    shop = _shop(services, shop_id)
    staff_id = text_field(data, "staff", max_len=60, required=True)
    if staff_id not in shop.staff:
        raise json_error(404, "unknown_staff", f"unknown staff member '{staff_id}'", field="staff")
    today = _today(services, shop)

    def moment(field: str) -> datetime:
        day, minute = parse_moment(data.get(field), field, today=today)
        return to_utc(day, minute, shop.tz)

    start, end = moment("start"), moment("end")
    reason = text_field(data, "reason", max_len=200)
    try:
        affected = await record_time_off(services, shop_id, staff_id, start, end, _staff_actor(session), reason)
    except Refused as exc:
        raise bad(exc.field, exc.message, exc.code) from None
    return _json({"ok": True, "affected": [_booking_json(services, b) for b in affected]})


# ----------------------------------------------------------------------------- FAQ


async def faq_status(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    registry = services.faq
    shops = []
    for shop_id in session.account.shops:
        status = registry.status(shop_id) if registry else None
        shops.append(
            {
                "shop": shop_id,
                "file": str(status.file) if status else None,
                "ok": bool(status.ok) if status else False,
                "errors": [str(e) for e in status.errors] if status else ["no FAQ file for this shop"],
                "loaded_at": _local(services, shop_id, status.loaded_at) if status and status.loaded_at else None,
                "entries": status.entries if status else 0,
                "unanswered": [
                    {"text": g.text, "count": g.count, "variants": list(g.variants)}
                    for g in group_unanswered(await faq_log.unanswered(services.db, shop_id, limit=200))
                ][:30],
            }
        )
    return _json({"shops": shops, "can_upload": session.account.is_admin})


async def faq_upload(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    shop_id = request.match_info["shop"]
    check_shop(session, shop_id)
    if not session.account.is_admin:
        raise json_error(403, "admin_only", "only admins may replace FAQ files")
    _shop(services, shop_id)
    directory = Path(services.config.faq_dir)
    target = directory / f"{shop_id}.yaml"
    status = services.faq.status(shop_id) if services.faq else None
    if status is not None and status.file:
        target = Path(status.file)
    name = relative_name(target)
    raw = await request.read()
    if len(raw) > MAX_FAQ_BYTES:
        raise json_error(413, "too_large", f"a FAQ file may have at most {MAX_FAQ_BYTES // 1024} KiB", field="body")
    routes = {m.role for shop in services.config.shops.values() for m in shop.staff.values()} | {"front_desk"}
    # Parsing is CPU work: off the event loop, so chats and other shops go on meanwhile.
    checked = await asyncio.to_thread(_check_faq_upload, raw, name, sorted(routes))
    if isinstance(checked, list):
        return _json({"ok": False, "errors": checked}, status=400)
    text, parsed = checked
    if parsed.shop != shop_id:
        return _json(
            {"ok": False, "errors": [f"{name}:1: the file says shop '{parsed.shop}', not '{shop_id}'"]}, status=400
        )
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=f".{shop_id}.", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, target)  # atomic: the old file serves until the new one is complete
    if services.faq:
        services.faq.reload_if_changed()
    return _json({"ok": True, "entries": len(parsed.entries), "file": str(target)})


def _check_faq_upload(raw: bytes, name: str, routes: list[str]) -> tuple[str, Any] | list[str]:
    """The uploaded file's text and FAQ, or its problems as FILE:LINE: reason."""
    try:
        text = decode_source(raw, name)
    except YamlSourceError as exc:
        return [str(i) for i in exc.issues]
    try:  # core/yamlsource's upload rules (no anchors/aliases, no control characters, bounded depth)
        parsed = parse_faq(text, name, routes)
    except Exception as exc:  # the FAQ rules must never turn an upload into a 500
        return [f"{name}:1: unreadable FAQ ({type(exc).__name__})"]
    if isinstance(parsed, list):
        return [str(e) for e in parsed]
    return text, parsed


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/console/me", me)
    r.add_get("/api/console/inbox", inbox)
    r.add_get("/api/console/conversations/{id}", conversation)
    r.add_post("/api/console/conversations/{id}/take", take)
    r.add_post("/api/console/conversations/{id}/reply", reply)
    r.add_post("/api/console/conversations/{id}/note", note)
    r.add_post("/api/console/conversations/{id}/release", release)
    r.add_get("/api/console/day", day_view)
    r.add_post("/api/console/bookings", manual_booking)
    r.add_post("/api/console/bookings/{id}/{action}", booking_action)
    r.add_post("/api/console/time_off", time_off)
    r.add_get("/api/console/faq", faq_status)
    r.add_post("/api/console/faq/{shop}", faq_upload)
