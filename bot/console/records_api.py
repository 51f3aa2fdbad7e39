"""The console's records API (under /api/console/records): customers' pets and vaccinations, visit
notes at completion, eye exam results. Session, CSRF on every change and the per-shop check as
everywhere in the console (bot/console/auth.py): a record of another shop is a 403.

    GET  /customers?shop=&q=           find customers by name or phone (masked in the answer)
    GET  /customers/{id}               profile, pets with vaccinations, visit notes, eye records, trail
    POST /customers/{id}/pets          {name, species, breed?, size?, birth_date?, weight_kg?, notes?}
    POST /pets/{id}                    the same fields, only those given are changed
    POST /pets/{id}/vaccinations       {kind (or "" = general), given_on, expires_on?}
    POST /vaccinations/{id}/delete
    GET  /bookings/{id}/visit          this visit's notes, and the last ones of the same kind ("same as last time")
    POST /bookings/{id}/complete       {products?, blade?, notes?}: marks a confirmed visit completed, keeps the notes
    POST /customers/{id}/eye_records   {od_sphere, od_cylinder, od_axis, od_add, od_va, os_..., pd, notes,
                                        examined_on?, patient_name?, patient_birth_date?, booking_id?}
    POST /eye_records/{id}             the whole exam again (a correction)
    POST /eye_records/{id}/send        the plain-language summary to the customer's latest chat
    POST /series/{id}/cancel_rest      {from_seq?}: cancel a recurring series' visits from that one on
                                       (the customer page lists each series with its visits)
    POST /series/{id}/move             {weekday? 0-6 (Mon-Sun, weekly series), time? "HH:MM", choices?
                                        {seq: ISO start}, keep_clashing?}: every visit still ahead moved;
                                       200 {applied: true, visits} or 409 clash {applied: false, visits:
                                       each with outcome moved|unchanged|clash|kept and alternatives}
    GET  /recalls?shop=&within=        everyone due for an eye check-up (overdue or within N days,
                                       default 30): name, last exam date, recall date and rule, no values
    POST /eye_records/{id}/recall      the check-up reminder to the customer's latest chat, once per exam
                                       (409 already_sent | not_latest, 422 no_channel)

The queries live in the application layer (bot/usecases/records.py, series.py): this module
parses, checks the shop and renders. Bad input is a 400 naming the field (core's RecordError);
eye answers are never cached (Cache-Control: no-store) and nothing here logs a record's values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.api import SERVICES_KEY, bad, int_id, json_error, parse_date, text_field
from bot.bootstrap import Services
from bot.console.api import _body, _json, _shop, _today
from bot.console.auth import check_csrf, check_shop, require_session
from bot.usecases import records as usecase_records
from bot.usecases import series as series_usecases
from core import eye_records, records, vaccinations
from core.audit import RecordError, trail
from core.customers import mask_phone
from core.i18n import LANGS
from core.models import Booking, BookingSeries, Customer, EyeRecord, Pet, Vaccination
from core.results import Actor, NotAllowed
from core.series import SeriesError
from core.staff_accounts import Session

MAX_RESULTS = 50


def _actor(session: Session) -> Actor:
    return Actor.staff(session.account.username)


def _private(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def _changing(request: web.Request) -> tuple[Services, Session]:
    session = await require_session(request)
    check_csrf(request, session)
    return request.app[SERVICES_KEY], session


_KINDS: dict[Any, usecase_records.Owned] = {
    Customer: "customer",
    Pet: "pet",
    Vaccination: "vaccination",
    Booking: "booking",
    EyeRecord: "eye_record",
    BookingSeries: "series",
}


async def _shop_of(services: Services, model: Any, object_id: int, what: str) -> str:
    """The shop an object belongs to (404 when there is none)."""
    shop_id = await usecase_records.shop_of(services.db, _KINDS[model], object_id)
    if shop_id is None:
        raise json_error(404, "not_found", f"no such {what}")
    return shop_id


async def _scoped(request: web.Request, session: Session, model: Any, what: str) -> tuple[int, str]:
    services = request.app[SERVICES_KEY]
    object_id = int_id(request.match_info["id"])
    shop_id = await _shop_of(services, model, object_id, what)
    check_shop(session, shop_id)
    _shop(services, shop_id)
    return object_id, shop_id


def _record_error(exc: RecordError) -> web.HTTPException:
    return bad(exc.field, exc.message, "bad_record")


# ----------------------------------------------------------------------------- customers


async def find_customers(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    shop_id = request.query.get("shop", "")
    check_shop(session, shop_id)
    shop = _shop(services, shop_id)
    q = text_field(dict(request.query), "q", max_len=100)
    rows = await usecase_records.find_customers(services.db, shop_id, q, limit=MAX_RESULTS)
    return _private(
        _json(
            {
                "shop": shop_id,
                "shop_kind": shop.kind,
                "customers": [{"id": c.id, "name": c.name, "phone": mask_phone(c.phone), "pets": c.pets} for c in rows],
            }
        )
    )


async def _series_rows(services: Services, shop_id: str, customer_id: int) -> list[dict[str, Any]]:
    """The customer's recurring series, each with its visits (times in the shop's zone)."""
    shop = services.config.shops[shop_id]
    now = services.clock.now()
    out = []
    for view in await series_usecases.series_of_customer(services.bookings, shop_id, customer_id):
        row = view.as_json(now)
        for visit in row["visits"]:
            visit["planned_start"] = datetime.fromisoformat(visit["planned_start"]).astimezone(shop.tz).isoformat()
            if visit["booking"] is not None:
                start = datetime.fromisoformat(visit["booking"]["start"])
                visit["booking"]["start"] = start.astimezone(shop.tz).isoformat()
        row["service_name"] = (
            shop.services[view.service_id].name.model_dump() if view.service_id in shop.services else None
        )
        # "every week" / "每6周": the words the chat uses (core/locales series.every_*), per language
        row["interval"] = {lang: view.recurrence.describe(lang) for lang in LANGS}
        out.append(row)
    return out


def _eye_json(
    services: Services,
    shop_id: str,
    lang: str,
    record: eye_records.EyeRecordView,
    previous: eye_records.EyeRecordView | None = None,
) -> dict[str, Any]:
    """An exam with its recall date (a child's myopia growing since ``previous`` brings it closer)."""
    shop = services.config.shops[shop_id]
    recall = eye_records.recall_for(shop, record, previous)
    return {
        **record.as_json(),
        "recall_on": recall.isoformat(),
        "summary": eye_records.eye_summary(record, lang, recall_on=recall),
    }


async def customer_records(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    customer_id, shop_id = await _scoped(request, session, Customer, "customer")
    shop = _shop(services, shop_id)
    customer = await services.customers.get(customer_id)
    assert customer is not None
    pets = await records.pets_of(services.db, shop_id, customer_id)
    shots = await vaccinations.vaccinations_of(services.db, [p.id for p in pets])
    today = _today(services, shop)
    eyes = await eye_records.eye_records_of(services.db, shop_id, customer_id)
    kinds = [vaccinations.GENERAL_VACCINE, *shop.vaccinations.known()]
    return _private(
        _json(
            {
                "shop": shop_id,
                "shop_kind": shop.kind,
                "today": today.isoformat(),
                "customer": {
                    "id": customer.id,
                    "name": customer.display_name,
                    "phone": mask_phone(customer.phone),
                    "language": customer.language,
                    "notes": customer.notes,
                },
                "pets": [
                    {
                        **p.as_json(),
                        "vaccinations": [{**v.as_json(), "valid": v.valid_on(today)} for v in shots.get(p.id, [])],
                    }
                    for p in pets
                ],
                "vaccine_kinds": kinds,
                "visit_notes": [n.as_json() for n in await records.visit_notes_of(services.db, shop_id, customer_id)],
                "eye_records": [
                    _eye_json(services, shop_id, customer.language, r, eye_records.previous_of(eyes, r)) for r in eyes
                ],
                "bookings": await usecase_records.recent_bookings(services.db, services.config, customer_id),
                "series": await _series_rows(services, shop_id, customer_id),
                "trail": [
                    {**e.as_json(), "at": e.at.astimezone(shop.tz).isoformat()}  # shown in the shop's zone
                    for e in (await trail(services.db, shop_id, customer_id))[-50:][::-1]
                ],
            }
        )
    )


# ----------------------------------------------------------------------------- pets and vaccinations


async def _save_pet(
    request: web.Request, model: Any, what: str, save: Callable[..., Awaitable[records.PetRecord]]
) -> web.Response:
    """A pet added to a customer (``model`` Customer) or changed (``model`` Pet): the same checks."""
    services, session = await _changing(request)
    object_id, shop_id = await _scoped(request, session, model, what)
    data = await _body(request)
    try:
        pet = await save(
            services.db, services.clock, _shop(services, shop_id), shop_id, object_id, data, _actor(session)
        )
    except RecordError as exc:
        raise _record_error(exc) from None
    return _private(_json({"ok": True, "pet": pet.as_json()}))


async def add_pet(request: web.Request) -> web.Response:
    return await _save_pet(request, Customer, "customer", records.add_pet)


async def update_pet(request: web.Request) -> web.Response:
    return await _save_pet(request, Pet, "pet", records.update_pet)


async def add_vaccination(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    pet_id, shop_id = await _scoped(request, session, Pet, "pet")
    shop = _shop(services, shop_id)
    data = await _body(request)
    today = _today(services, shop)
    kind = text_field(data, "kind", max_len=40) or None
    given_on = parse_date(data.get("given_on"), "given_on", today=today, before=365 * 30, after=0)
    expires_on = (
        parse_date(data.get("expires_on"), "expires_on", today=today, before=365 * 30, after=365 * 10)
        if data.get("expires_on")
        else None
    )
    try:
        made = await vaccinations.record_vaccination(
            services.db, services.clock, shop_id, shop, pet_id, kind, given_on, _actor(session), expires_on=expires_on
        )
    except RecordError as exc:
        raise _record_error(exc) from None
    return _private(_json({"ok": True, "vaccination": {**made.as_json(), "valid": made.valid_on(today)}}))


async def delete_vaccination(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    vaccination_id, shop_id = await _scoped(request, session, Vaccination, "vaccination")
    await vaccinations.delete_vaccination(services.db, services.clock, shop_id, vaccination_id, _actor(session))
    return _json({"ok": True})


# ----------------------------------------------------------------------------- visit notes


async def visit(request: web.Request) -> web.Response:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    booking_id, shop_id = await _scoped(request, session, Booking, "booking")
    shop = _shop(services, shop_id)
    booking = await usecase_records.visit_facts(services.db, booking_id)
    assert booking is not None
    notes = await records.visit_notes_for(services.db, shop_id, booking_id)
    last = None
    if booking.customer_id is not None:
        before = booking.start.astimezone(shop.tz).date()
        found = await records.last_visit_notes(
            services.db, shop, shop_id, booking.customer_id, booking.service_id, pet_id=booking.pet_id, before=before
        )
        last = found.as_json() if found is not None else None
    return _private(
        _json(
            {
                "booking": booking_id,
                "status": booking.status.value,
                "customer_id": booking.customer_id,
                "notes": notes.as_json() if notes else None,
                "last": last,
            }
        )
    )


async def complete(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    booking_id, shop_id = await _scoped(request, session, Booking, "booking")
    _shop(services, shop_id)
    data = await _body(request)
    try:
        done = await usecase_records.complete_visit(services, shop_id, booking_id, data, _actor(session))
    except RecordError as exc:  # a bad field stops it before the visit is marked
        raise _record_error(exc) from None
    if isinstance(done, NotAllowed):
        return _json({"ok": False, "error": done.reason.value, "message": done.detail}, status=422)
    return _private(_json({"ok": True, "notes": done.as_json()}))


# ----------------------------------------------------------------------------- eye records


async def _save_exam(
    request: web.Request, session: Session, customer_id: int, shop_id: str, record_id: int | None
) -> web.Response:
    services = request.app[SERVICES_KEY]
    shop = _shop(services, shop_id)
    data = await _body(request)
    try:
        exam = eye_records.parse_exam(data, today=_today(services, shop))
        saved = await eye_records.save_eye_record(
            services.db, services.clock, shop_id, customer_id, exam, _actor(session), record_id=record_id
        )
    except RecordError as exc:
        raise _record_error(exc) from None
    customer = await services.customers.get(customer_id)
    lang = customer.language if customer else shop.default_language
    previous = eye_records.previous_of(await eye_records.eye_records_of(services.db, shop_id, customer_id), saved)
    return _private(_json({"ok": True, "record": _eye_json(services, shop_id, lang, saved, previous)}))


async def add_eye_record(request: web.Request) -> web.Response:
    _, session = await _changing(request)
    customer_id, shop_id = await _scoped(request, session, Customer, "customer")
    return await _save_exam(request, session, customer_id, shop_id, None)


async def update_eye_record(request: web.Request) -> web.Response:
    services, session = await _changing(request)
    record_id, shop_id = await _scoped(request, session, EyeRecord, "eye record")
    customer_id = await usecase_records.eye_record_owner(services.db, record_id)
    assert customer_id is not None
    return await _save_exam(request, session, customer_id, shop_id, record_id)


async def send_eye_record(request: web.Request) -> web.Response:
    """The exam result in plain words, to the customer's latest chat, in their language."""
    services, session = await _changing(request)
    record_id, shop_id = await _scoped(request, session, EyeRecord, "eye record")
    _shop(services, shop_id)
    outbox_id = await usecase_records.send_eye_summary(services, shop_id, record_id, _actor(session))
    if outbox_id is None:
        raise json_error(422, "no_channel", "the customer has no chat with us: give them the printout")
    return _json({"ok": True, "outbox_id": outbox_id})


# ----------------------------------------------------------------------------- check-ups due

MAX_WITHIN_DAYS = 365
RECALL_REFUSALS = {
    "already_sent": (409, "the reminder for this exam was sent already"),
    "not_latest": (409, "this person had a newer exam: remind them from that one"),
    "no_channel": (422, "the customer has no chat with us: call them instead"),
}


async def recalls(request: web.Request) -> web.Response:
    """Everyone whose next eye exam is due (overdue, or within ``within`` days, default 30)."""
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    shop_id = request.query.get("shop", "")
    check_shop(session, shop_id)
    shop = _shop(services, shop_id)
    raw = request.query.get("within", str(eye_records.RECALL_WINDOW_DAYS))
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_WITHIN_DAYS:
        raise bad("within", f"must be a number of days from 0 to {MAX_WITHIN_DAYS}", "bad_record")
    today = _today(services, shop)
    due = await eye_records.recalls_due(services.db, shop, shop_id, today, within_days=int(raw))
    return _private(
        _json(
            {
                "shop": shop_id,
                "shop_kind": shop.kind,
                "today": today.isoformat(),
                "within": int(raw),
                "recalls": [
                    {
                        **r.as_json(today),
                        "reminded_at": r.reminded_at.astimezone(shop.tz).isoformat() if r.reminded_at else None,
                    }
                    for r in due
                ],
            }
        )
    )


async def send_recall(request: web.Request) -> web.Response:
    """The check-up reminder for this exam, to the customer's latest chat (once per exam)."""
    services, session = await _changing(request)
    record_id, shop_id = await _scoped(request, session, EyeRecord, "eye record")
    shop = _shop(services, shop_id)
    try:
        outbox_id = await eye_records.send_recall(
            services.db, services.clock, shop, shop_id, record_id, _actor(session)
        )
    except eye_records.RecallRefused as exc:
        status, message = RECALL_REFUSALS[exc.reason]
        raise json_error(status, exc.reason, message) from None
    return _json({"ok": True, "outbox_id": outbox_id})


# ----------------------------------------------------------------------------- recurring series


async def cancel_series_rest(request: web.Request) -> web.Response:
    """Cancel the rest of a series: its visits from ``from_seq`` (default: every one still ahead)."""
    services, session = await _changing(request)
    series_id, shop_id = await _scoped(request, session, BookingSeries, "series")
    data = await _body(request)
    raw = data.get("from_seq", 1)
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit() or not 1 <= int(raw) <= 1000:
        raise bad("from_seq", "must be a visit number from 1", "bad_record")
    try:
        cancelled = await series_usecases.cancel_rest(
            services.bookings, shop_id, series_id, _actor(session), from_seq=int(raw)
        )
    except SeriesError:
        raise json_error(404, "not_found", "no such series") from None
    return _json({"series": series_id, "cancelled": [b.id for b in cancelled]})


def _move_input(data: dict[str, Any], tz: Any) -> dict[str, Any]:
    """The move's fields, checked at the edge (400 naming the field)."""
    weekday = data.get("weekday")
    if weekday in (None, ""):
        weekday = None
    elif isinstance(weekday, bool) or not str(weekday).isdigit() or not 0 <= int(str(weekday)) <= 6:
        raise bad("weekday", "must be 0 (Monday) to 6 (Sunday)", "bad_record")
    hhmm = data.get("time") or None
    if hhmm is not None and (not isinstance(hhmm, str) or len(hhmm) != 5 or hhmm[2] != ":"):
        raise bad("time", "must be HH:MM", "bad_record")
    if weekday is None and hhmm is None:
        raise bad("time", "give a new weekday or time", "bad_record")
    raw = data.get("choices") or {}
    if not isinstance(raw, dict) or len(raw) > 100:
        raise bad("choices", "must map visit numbers to start times", "bad_record")
    choices: dict[int, datetime] = {}
    for seq, start in raw.items():
        try:
            when = datetime.fromisoformat(str(start))
        except ValueError:
            raise bad("choices", f"visit {str(seq)[:8]}: not a time", "bad_record") from None
        if not str(seq).isdigit() or when.tzinfo is None:
            raise bad("choices", "must map visit numbers to start times with their offset", "bad_record")
        choices[int(str(seq))] = when
    keep = data.get("keep_clashing", False)
    if not isinstance(keep, bool):
        raise bad("keep_clashing", "must be true or false", "bad_record")
    return {
        "weekday": int(str(weekday)) if weekday is not None else None,
        "local_time": hhmm,
        "choices": choices,
        "keep_clashing": keep,
    }


async def move_series(request: web.Request) -> web.Response:
    """Move every visit still ahead of a series to a new weekday and/or time (all or nothing,
    unless ``keep_clashing``); each clash comes back with the nearest free starts."""
    services, session = await _changing(request)
    series_id, shop_id = await _scoped(request, session, BookingSeries, "series")
    shop = _shop(services, shop_id)
    fields = _move_input(await _body(request), shop.tz)
    try:
        moved = await series_usecases.move_rest(services.bookings, shop_id, series_id, _actor(session), **fields)
    except SeriesError:
        raise json_error(404, "not_found", "no such series (or it was cancelled)") from None
    except ValueError as exc:
        field = "weekday" if "weekday" in str(exc) else "time"
        raise bad(field, str(exc), "bad_record") from None
    if moved.applied:
        await services.events.publish({"type": "booking", "shop": shop_id})
    body = {"series": series_id, "applied": moved.applied, "visits": [v.as_json(shop.tz) for v in moved.visits]}
    if not moved.applied:
        return _json({**body, "error": "clash", "message": "some visits clash: nothing was moved"}, status=409)
    return _json(body)


def register(app: web.Application) -> None:
    r = app.router
    base = "/api/console/records"
    r.add_get(f"{base}/customers", find_customers)
    r.add_get(f"{base}/customers/{{id}}", customer_records)
    r.add_post(f"{base}/customers/{{id}}/pets", add_pet)
    r.add_post(f"{base}/pets/{{id}}", update_pet)
    r.add_post(f"{base}/pets/{{id}}/vaccinations", add_vaccination)
    r.add_post(f"{base}/vaccinations/{{id}}/delete", delete_vaccination)
    r.add_get(f"{base}/bookings/{{id}}/visit", visit)
    r.add_post(f"{base}/bookings/{{id}}/complete", complete)
    r.add_post(f"{base}/customers/{{id}}/eye_records", add_eye_record)
    r.add_post(f"{base}/eye_records/{{id}}", update_eye_record)
    r.add_post(f"{base}/eye_records/{{id}}/send", send_eye_record)
    r.add_post(f"{base}/series/{{id}}/cancel_rest", cancel_series_rest)
    r.add_post(f"{base}/series/{{id}}/move", move_series)
    r.add_get(f"{base}/recalls", recalls)
    r.add_post(f"{base}/eye_records/{{id}}/recall", send_recall)
