"""Recurring visits, the use cases the engine and the console share (core/series.py does the work).

For the engine (the hook is the lead's, in ``bot/engine/flows.py``):

- ``continue_series(bookings, first, recurrence, lang)`` right after the first booking of a
  series is confirmed (``flows.confirm``): books the other visits inside the booking horizon
  and returns what to say (every visit truthfully: booked, moved to the nearest free time that
  day, or waiting for a choice with buttons). It runs in the turn's unit of work.
- ``answer_button(bookings, payload, customer_id, lang)`` for a tapped ``sr:`` button (a visit
  whose day was full): books the chosen time, or says it is gone and offers the times free now.

- ``cancel_rest_in_chat(bookings, shop_id, booking_id, customer_id, lang)`` when the customer
  cancels "this one and the rest" of a series; None when the booking is in none of theirs.

For the console: ``series_of_customer``, ``cancel_rest``, ``move_rest`` (every visit still ahead to
a new weekday / time, all or nothing unless staff keep the clashing ones). For the periodic job:
``extend``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from core.bookings import BookingService
from core.i18n import texts
from core.messages import OutgoingMessage
from core.results import Actor, Booked, BookingView
from core.series import (
    PREFIX,
    Recurrence,
    SeriesError,
    SeriesMove,
    SeriesService,
    SeriesView,
    VisitView,
    choice_message,
    parse_payload,
    started_messages,
)

__all__ = [
    "PREFIX",
    "SeriesReply",
    "answer_button",
    "cancel_rest",
    "cancel_rest_in_chat",
    "continue_series",
    "extend",
    "move_rest",
    "series_of_customer",
]


@dataclass(frozen=True)
class SeriesReply:
    """What the engine says (in order) and the series it is about (None: no series was made)."""

    messages: tuple[OutgoingMessage, ...]
    series_id: int | None = None


async def continue_series(
    bookings: BookingService, first: BookingView, recurrence: Recurrence, lang: str
) -> SeriesReply:
    """Make ``first`` (just confirmed in chat) visit 1 of a series and book the others now due."""
    if first.customer_id is None:
        return SeriesReply(())
    service = SeriesService(bookings)
    try:
        started = await service.start(first.shop_id, first.id, recurrence, Actor.customer(first.customer_id))
    except SeriesError:
        return SeriesReply(())
    shop = bookings.shop(first.shop_id)
    return SeriesReply(started_messages(started, shop, lang), started.series.id)


async def answer_button(bookings: BookingService, payload: str, customer_id: int, lang: str) -> SeriesReply:
    """A tapped ``sr:<series>:<seq>:<time>`` button: book that visit at that time."""
    t = texts(lang)
    parsed = parse_payload(payload)
    if parsed is None:
        return SeriesReply((OutgoingMessage(t.t("series.unavailable")),))
    series_id, seq, start = parsed
    service = SeriesService(bookings)
    result = await service.choose(series_id, seq, start, customer_id)
    view = await service.find(series_id)
    if isinstance(result, Booked) and view is not None:
        shop = bookings.shop(view.shop_id)
        return SeriesReply(
            (OutgoingMessage(t.t("series.chosen", n=seq, when=t.format_when(result.booking.start, shop.tz))),),
            series_id,
        )
    if view is None or view.customer_id != customer_id:
        return SeriesReply((OutgoingMessage(t.t("series.unavailable")),))
    visit = next((v for v in view.visits if v.seq == seq), None)
    if visit is None or visit.booking is not None:
        return SeriesReply((OutgoingMessage(t.t("series.unavailable")),), series_id)
    shop = bookings.shop(view.shop_id)
    again = VisitView(visit.seq, visit.planned_start, visit.outcome, None, await service.free_around(series_id, seq))
    return SeriesReply(
        (OutgoingMessage(t.t("series.unavailable")), choice_message(series_id, again, shop, t)), series_id
    )


async def series_of_customer(bookings: BookingService, shop_id: str, customer_id: int) -> list[SeriesView]:
    return await SeriesService(bookings).of_customer(shop_id, customer_id)


async def cancel_rest(
    bookings: BookingService, shop_id: str, series_id: int, actor: Actor, *, from_seq: int = 1
) -> list[BookingView]:
    """Cancel the series' visits from ``from_seq`` on (SeriesError: not this shop's series)."""
    return await SeriesService(bookings).cancel_rest(shop_id, series_id, actor, from_seq=from_seq)


async def move_rest(
    bookings: BookingService,
    shop_id: str,
    series_id: int,
    actor: Actor,
    *,
    weekday: int | None = None,
    local_time: str | None = None,
    from_seq: int = 1,
    choices: Mapping[int, datetime] | None = None,
    keep_clashing: bool = False,
) -> SeriesMove:
    """Staff move a whole series (every visit still ahead) to another weekday and/or time: each
    visit under the booking guarantee, in one unit of work; clashes come back one by one with the
    nearest free starts and nothing moved, until staff choose for each or keep those as they are
    (SeriesError: not this shop's series; ValueError: a bad weekday or time)."""
    return await SeriesService(bookings).move_rest(
        shop_id,
        series_id,
        actor,
        weekday=weekday,
        local_time=local_time,
        from_seq=from_seq,
        choices=choices,
        keep_clashing=keep_clashing,
    )


async def cancel_rest_in_chat(
    bookings: BookingService, shop_id: str, booking_id: int, customer_id: int, lang: str
) -> SeriesReply | None:
    """The customer asks, about one visit of a series, to cancel it and every later one ("之后的都
    取消" / "cancel the rest"). None when that booking is not in one of their series (the engine
    then cancels the single booking as usual). Visits inside the shop's cancel cut-off stay."""
    service = SeriesService(bookings)
    view = await service.of_booking(shop_id, booking_id)
    if view is None or view.customer_id != customer_id:
        return None
    seq = next(v.seq for v in view.visits if v.booking is not None and v.booking.id == booking_id)
    gone = await service.cancel_rest(shop_id, view.id, Actor.customer(customer_id), from_seq=seq)
    return SeriesReply((OutgoingMessage(texts(lang).t("series.cancelled_rest", count=len(gone))),), view.id)


async def extend(bookings: BookingService) -> int:
    """The periodic job: book the visits whose day came inside the horizon (bot/scheduler.py)."""
    return await SeriesService(bookings).extend()
