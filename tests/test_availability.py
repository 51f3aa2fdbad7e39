"""Availability as a pure function: hours, shifts, time off, buffer, lead time, horizon, rooms, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.availability import Interval, free_slots
from core.config import AppConfig, ShopConfig
from core.schedule import Calendar, slot_query
from tests.conftest import NOW

SHANGHAI = ZoneInfo("Asia/Shanghai")
SAT, MON, TUE, WED, THU = (date(2026, 11, d) for d in (21, 23, 24, 25, 26))


def local(day: date, hhmm: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


def times(slots: list, tz: ZoneInfo = SHANGHAI) -> list[str]:
    return [s.start.astimezone(tz).strftime("%H:%M") for s in slots]


def slots_for(
    config: AppConfig,
    shop_id: str,
    service_id: str,
    day: date,
    *,
    now: datetime = NOW,
    calendar: Calendar | None = None,
    staff: list[str] | None = None,
) -> list:
    shop = config.shops[shop_id]
    return free_slots(
        slot_query(
            shop,
            service_id,
            day,
            now,
            duration_min=shop.services[service_id].duration_min,
            staff_ids=staff if staff is not None else shop.qualified_staff(service_id),
            calendar=calendar or Calendar(),
        )
    )


def test_closed_on_tuesdays(demo_config: AppConfig) -> None:
    assert slots_for(demo_config, "pawspa", "dog_bath_small", TUE) == []
    assert slots_for(demo_config, "pawspa", "dog_bath_small", MON)


def test_day_off_leaves_only_the_others(demo_config: AppConfig) -> None:
    # Full grooming is done by Ajie and Master Lin; Thursday is Lin's day off, Ajie starts at 12:00.
    thursday = slots_for(demo_config, "pawspa", "grooming", THU)
    assert {s.staff_ids for s in thursday} == {("ajie",)}
    assert times(thursday)[0] == "12:00"
    monday = slots_for(demo_config, "pawspa", "grooming", MON)
    assert times(monday)[0] == "10:00" and monday[0].staff_ids == ("lin",)


def test_training_morning(demo_config: AppConfig) -> None:
    wednesday = slots_for(demo_config, "clearsight", "adult_exam", WED)
    by_time = {times([s])[0]: s.staff_ids for s in wednesday}
    assert by_time["09:30"] == ("dr_wang",)
    assert by_time["12:30"] == ("dr_wang",)
    assert by_time["13:00"] == ("dr_wang", "dr_chen")


def test_buffer_after_each_appointment(demo_config: AppConfig) -> None:
    calendar = Calendar()
    calendar.staff_busy["dr_wang"].append(Interval(local(MON, "10:00"), local(MON, "10:30")))
    wang = slots_for(demo_config, "clearsight", "adult_exam", MON, calendar=calendar, staff=["dr_wang"])
    # 5-minute buffer after every exam: 10:30 falls in the cleanup after 10:00, and a 09:30 exam
    # would leave no cleanup time before 10:00.
    assert times(wang)[0] == "10:45"
    free = slots_for(demo_config, "clearsight", "adult_exam", MON, staff=["dr_wang"])
    assert times(free)[:2] == ["09:30", "09:45"]


def test_lead_time_today(demo_config: AppConfig) -> None:
    # NOW is Saturday 09:00 in Shanghai; PawSpa needs 2 hours' notice.
    today = slots_for(demo_config, "pawspa", "nail_trim", SAT)
    assert times(today)[0] == "11:00"
    just_before = slots_for(demo_config, "pawspa", "nail_trim", SAT, now=local(SAT, "09:01"))
    assert times(just_before)[0] == "11:30"


def test_horizon(demo_config: AppConfig) -> None:
    assert slots_for(demo_config, "clearsight", "adult_exam", SAT + timedelta(days=30))
    assert slots_for(demo_config, "clearsight", "adult_exam", SAT + timedelta(days=31)) == []
    assert slots_for(demo_config, "clearsight", "adult_exam", SAT - timedelta(days=1)) == []


def test_one_exam_room_for_two_optometrists(demo_config: AppConfig) -> None:
    calendar = Calendar()
    calendar.staff_busy["dr_wang"].append(Interval(local(MON, "10:00"), local(MON, "10:30")))
    calendar.resource_busy["exam_room"][0].append(Interval(local(MON, "10:00"), local(MON, "10:30")))
    monday = times(slots_for(demo_config, "clearsight", "child_exam", MON, calendar=calendar))
    # Dr. Chen is free, but the room is not: nothing may overlap 10:00-10:30.
    assert "09:30" not in monday and "10:00" not in monday and "10:15" not in monday
    assert "09:15" not in monday  # before opening
    assert "10:30" in monday


def test_pickup_needs_no_optometrist(demo_config: AppConfig) -> None:
    sunday = slots_for(demo_config, "clearsight", "glasses_pickup", date(2026, 11, 22))
    assert sunday and all(s.staff_ids == () for s in sunday)


def test_time_off_cuts_a_shift(demo_config: AppConfig) -> None:
    calendar = Calendar()
    calendar.time_off["xiaomei"].append(Interval(local(MON, "12:00"), local(MON, "15:00")))
    slots = slots_for(demo_config, "pawspa", "dog_bath_small", MON, calendar=calendar, staff=["xiaomei"])
    assert "11:00" in times(slots) and "11:30" not in times(slots)
    assert "14:30" not in times(slots) and "15:00" in times(slots)


def _berlin_shop(hours: str) -> ShopConfig:
    return ShopConfig.model_validate(
        {
            "name": "Berlin Salon",
            "timezone": "Europe/Berlin",
            "address": "Berlin",
            "booking": {"slot_step_min": 30, "lead_time_min": 0, "horizon_days": 366},
            "opening_hours": {d: [hours] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            "services": {"cut": {"name": "Cut", "duration_min": 30}},
            "staff": {"anna": {"name": "Anna", "role": "groomer", "services": ["cut"], "shifts": {}}},
        }
    )


def _berlin_slots(shop: ShopConfig, day: date, hours: str) -> list:
    shifted = shop.model_copy(
        update={
            "staff": {
                "anna": shop.staff["anna"].model_copy(
                    update={"shifts": shop.opening_hours}  # Anna works whenever the shop is open
                )
            }
        }
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return free_slots(
        slot_query(shifted, "cut", day, now, duration_min=30, staff_ids=["anna"], calendar=Calendar())
    )


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [(date(2026, 3, 28), 9), (date(2026, 3, 29), 8), (date(2026, 10, 24), 8), (date(2026, 10, 25), 9)],
)
def test_dst_wall_clock_hours_stay_put(day: date, utc_hour: int) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    shop = _berlin_shop("10:00-18:00")
    slots = _berlin_slots(shop, day, "10:00-18:00")
    assert times(slots, berlin)[0] == "10:00" and times(slots, berlin)[-1] == "17:30"
    assert slots[0].start.hour == utc_hour  # the same wall time is a different instant
    assert len(slots) == 16
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)


def test_dst_days_are_23_and_25_hours_long() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    shop = _berlin_shop("00:00-24:00")
    spring = _berlin_slots(shop, date(2026, 3, 29), "00:00-24:00")
    autumn = _berlin_slots(shop, date(2026, 10, 25), "00:00-24:00")
    normal = _berlin_slots(shop, date(2026, 3, 30), "00:00-24:00")
    assert (len(spring), len(normal), len(autumn)) == (46, 48, 50)
    assert not [t for t in times(spring, berlin) if t.startswith("02:")]  # 02:xx does not exist
    assert times(autumn, berlin).count("02:30") == 2  # 02:30 happens twice
    starts = [s.start for s in autumn]
    assert len(set(starts)) == len(starts)
