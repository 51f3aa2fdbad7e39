"""Many customers, one slot: the database lets exactly one win, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.results import Actor, Booked, Taken
from tests.helpers import MON, at, overlaps_in_database

RACERS = 50


async def _race(services: Services, requests: list[BookingRequest]) -> list:
    return await asyncio.gather(
        *(services.bookings.book(request, Actor.customer(i)) for i, request in enumerate(requests))
    )


def _tally(results: list) -> tuple[list[Booked], list[Taken]]:
    booked = [r for r in results if isinstance(r, Booked)]
    taken = [r for r in results if isinstance(r, Taken)]
    assert len(booked) + len(taken) == len(results), [r for r in results if not r.ok]
    return booked, taken


async def test_fifty_confirmations_for_one_slot(services: Services) -> None:
    request = BookingRequest("pawspa", "dog_bath_small", at(MON, "10:00"), staff_id="xiaomei")
    booked, taken = _tally(await _race(services, [request] * RACERS))
    assert len(booked) == 1 and len(taken) == RACERS - 1
    winner = booked[0].booking
    for loser in taken:
        assert len(loser.alternatives) == 3
        assert all(slot.start != winner.start for slot in loser.alternatives)
    assert await overlaps_in_database(services) == []


async def test_overlapping_but_different_starts(services: Services) -> None:
    starts = ["10:00", "10:30", "11:00"]  # 60-minute baths: every pair overlaps (with the buffer)
    rng = random.Random(7)
    requests = [
        BookingRequest("pawspa", "dog_bath_small", at(MON, rng.choice(starts)), staff_id="xiaomei")
        for _ in range(RACERS)
    ]
    booked, _ = _tally(await _race(services, requests))
    assert len(booked) == 1
    assert await overlaps_in_database(services) == []


async def test_shared_exam_room(services: Services) -> None:
    # Two optometrists, one room: half the racers want Dr. Wang, half Dr. Chen, same time.
    requests = [
        BookingRequest("clearsight", "adult_exam", at(MON, "10:00"), staff_id=("dr_wang", "dr_chen")[i % 2])
        for i in range(RACERS)
    ]
    booked, _ = _tally(await _race(services, requests))
    assert len(booked) == 1
    assert await overlaps_in_database(services) == []


async def test_any_staff_race_fills_each_groomer_once(services: Services) -> None:
    request = BookingRequest("pawspa", "dog_bath_small", at(MON, "14:00"))
    booked, taken = _tally(await _race(services, [request] * RACERS))
    assert sorted(b.booking.staff_id or "" for b in booked) == ["ajie", "xiaomei"]
    assert len(taken) == RACERS - 2
    assert await overlaps_in_database(services) == []


async def test_reschedules_racing_into_one_slot(services: Services) -> None:
    originals = []
    for i, hhmm in enumerate(["10:00", "12:00", "14:00", "16:00"]):
        result = await services.bookings.book(
            BookingRequest("pawspa", "dog_bath_small", at(MON, hhmm), staff_id="xiaomei"), Actor.customer(i)
        )
        assert isinstance(result, Booked)
        originals.append(result.booking)
    target = at(MON, "18:00")
    results = await asyncio.gather(
        *(
            services.bookings.reschedule("pawspa", b.id, target, Actor.customer(i), staff_id="xiaomei")
            for i, b in enumerate(originals)
        )
    )
    moved = [r for r in results if isinstance(r, Booked)]
    assert len(moved) == 1
    for original, result in zip(originals, results, strict=True):
        if not isinstance(result, Booked):
            kept = await services.bookings.get("pawspa", original.id)
            assert kept is not None and kept.start == original.start  # losers keep their old time
    assert await overlaps_in_database(services) == []
