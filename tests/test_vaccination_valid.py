"""core.records.vaccination_valid: the recorded expiry when there is one, else a year after the day
given (the rule the engine's booking form asks before asking the customer)."""

from __future__ import annotations

from datetime import date

import pytest

from core.customers import PetView
from core.records import vaccination_valid
from core.vaccinations import VaccinationView


def _record(given: date, expires: date, kind: str = "rabies") -> VaccinationView:
    return VaccinationView(1, 7, kind, given, expires, "staff")


def _pet(vaccinated_on: date | None) -> PetView:
    return PetView(7, "豆豆", "dog", "poodle", "small", None, "", vaccinated_on)


def test_a_shorter_recorded_expiry_wins_over_the_year() -> None:
    shot = _record(date(2026, 3, 1), date(2026, 9, 1))  # a six-month vaccine
    assert vaccination_valid(shot, date(2026, 9, 1))  # the last day still counts
    assert not vaccination_valid(shot, date(2026, 9, 2))
    assert not vaccination_valid(shot, date(2027, 2, 28))  # a year from March would have said yes


def test_a_longer_recorded_expiry_counts_too() -> None:
    shot = _record(date(2026, 3, 1), date(2029, 3, 1))  # a three-year rabies vaccine
    assert vaccination_valid(shot, date(2028, 12, 24))
    assert not vaccination_valid(shot, date(2029, 3, 2))


def test_without_an_expiry_a_year_after_the_day_given() -> None:
    pet = _pet(date(2026, 3, 15))
    assert vaccination_valid(pet, date(2026, 3, 15))
    assert vaccination_valid(pet, date(2027, 3, 15))
    assert not vaccination_valid(pet, date(2027, 3, 16))


def test_29_february_counts_until_28_february() -> None:
    pet = _pet(date(2028, 2, 29))
    assert vaccination_valid(pet, date(2029, 2, 28))
    assert not vaccination_valid(pet, date(2029, 3, 1))


def test_nothing_on_file_or_given_after_the_visit_does_not_count() -> None:
    assert not vaccination_valid(None, date(2026, 5, 1))
    assert not vaccination_valid(_pet(None), date(2026, 5, 1))
    assert not vaccination_valid(_record(date(2026, 5, 2), date(2027, 5, 2)), date(2026, 5, 1))
    assert not vaccination_valid([], date(2026, 5, 1))


def test_a_pet_carrying_its_expiry_uses_it() -> None:
    class Pet:  # a pet view that also carries the expiry of its latest vaccination
        vaccinated_on = date(2026, 1, 10)
        vaccination_expires_on = date(2026, 4, 10)

    assert vaccination_valid(Pet(), date(2026, 4, 10))
    assert not vaccination_valid(Pet(), date(2026, 4, 11))


@pytest.mark.parametrize(
    ("day", "valid"),
    [(date(2026, 6, 1), True), (date(2026, 10, 1), True), (date(2027, 2, 1), False)],
)
def test_several_records_any_one_counting_is_enough(day: date, valid: bool) -> None:
    records = [
        _record(date(2026, 1, 1), date(2026, 7, 1), "core"),
        _record(date(2026, 4, 1), date(2026, 12, 31), "rabies"),
    ]
    assert vaccination_valid(records, day) is valid
    assert vaccination_valid(tuple(records), day) is valid
