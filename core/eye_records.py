"""Eye exam records: the optometrist's result per eye (sphere, cylinder, axis, add, visual acuity),
PD and notes; checked on entry, summarised in plain words for the customer, and the recall date.

Ranges: sphere -30..+30 and cylinder -10..+10 in 0.25 steps, axis 1..180 (whole degrees, needed
with a cylinder), add 0..4 in 0.25 steps, PD 40..80 mm in 0.5 steps; visual acuity as decimal
(1.0, 0.8), Snellen (20/20, 6/6), five-point (5.0) or CF/HM/LP/NLP. A bad value raises RecordError
naming the field (od_* right eye, os_* left eye). Powers are kept in hundredths of a dioptre.
Recall (``recall_due``): short-sighted children every 6 months (3 when it grew since the last
exam), other children and adults yearly; the shop's config ``eye_recall`` sets the months.
Eye data is personal health data: only the shop's staff and the customer see it, and nothing
here logs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from core.audit import RecordError
from core.clock import Clock
from core.config import EyeRecallRules, ShopConfig
from core.db import Database
from core.i18n import texts
from core.models import Booking, Customer, EyeRecord
from core.records import MAX_NOTES, RecordChange, parse_day, recorded_by, text_value
from core.results import Actor

EYES = ("od", "os")  # right, left
_POWERS: dict[str, tuple[Decimal, Decimal, Decimal]] = {  # field -> (lowest, highest, step)
    "sphere": (Decimal(-30), Decimal(30), Decimal("0.25")),
    "cylinder": (Decimal(-10), Decimal(10), Decimal("0.25")),
    "add": (Decimal(0), Decimal(4), Decimal("0.25")),
}
_DECIMAL_VA = re.compile(r"^[0-2](\.\d{1,2})?$")
_FIVE_POINT_VA = re.compile(r"^[345]\.\d$")
_SNELLEN_VA = re.compile(r"^(20|6)/(\d{1,3})$")
_WORD_VA = ("CF", "HM", "LP", "NLP")
MYOPIA_SE = -50  # spherical equivalent at or below -0.50 D is short-sighted
PROGRESSION = 50  # 0.50 D more myopia than the previous exam: progressing


@dataclass(frozen=True)
class Eye:
    sphere: int | None = None  # hundredths of a dioptre
    cylinder: int | None = None
    axis: int | None = None
    add: int | None = None
    va: str | None = None

    @property
    def present(self) -> bool:
        return self.sphere is not None

    @property
    def spherical_equivalent(self) -> int | None:
        if self.sphere is None:
            return None
        return self.sphere + (self.cylinder or 0) // 2

    def as_json(self) -> dict[str, Any]:
        return {
            "sphere": power_text(self.sphere),
            "cylinder": power_text(self.cylinder),
            "axis": self.axis,
            "add": power_text(self.add),
            "va": self.va,
        }


@dataclass(frozen=True)
class EyeExam:
    """A checked exam as entered (not yet stored)."""

    examined_on: date
    od: Eye
    os: Eye
    pd: int | None = None  # tenths of a millimetre
    notes: str = ""
    patient_name: str = ""
    patient_birth_date: date | None = None
    booking_id: int | None = None


@dataclass(frozen=True)
class EyeRecordView:
    id: int
    shop_id: str
    customer_id: int
    booking_id: int | None
    examined_on: date
    patient_name: str
    patient_birth_date: date | None
    od: Eye
    os: Eye
    pd: int | None
    notes: str
    recorded_by: str
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "booking_id": self.booking_id,
            "examined_on": self.examined_on.isoformat(),
            "patient_name": self.patient_name,
            "patient_birth_date": self.patient_birth_date.isoformat() if self.patient_birth_date else None,
            "od": self.od.as_json(),
            "os": self.os.as_json(),
            "pd": pd_text(self.pd),
            "notes": self.notes,
            "recorded_by": self.recorded_by,
            "updated_at": self.updated_at.isoformat(),
        }


def power_text(hundredths: int | None) -> str | None:
    """-300 -> "-3.00", 125 -> "+1.25", 0 -> "0.00"."""
    if hundredths is None:
        return None
    sign = "+" if hundredths > 0 else "-" if hundredths < 0 else ""
    return f"{sign}{abs(hundredths) / 100:.2f}"


def pd_text(tenths: int | None) -> str | None:
    if tenths is None:
        return None
    return f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:.1f}"


# ------------------------------------------------------------------------------------------ input


def _number(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(field, "must be a number")
    text = str(value).strip().replace("−", "-").replace("＋", "+")
    if text.lower() in ("pl", "plano", "平光"):
        return Decimal(0)
    if not re.fullmatch(r"[+-]?\d{1,3}(\.\d{1,3})?", text):
        raise RecordError(field, "must be a number like -3.25")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise RecordError(field, "must be a number like -3.25") from None


def _power(value: Any, field: str, kind: str) -> int | None:
    number = _number(value, field)
    if number is None:
        return None
    low, high, step = _POWERS[kind]
    if not low <= number <= high:
        raise RecordError(field, f"must be between {low:+} and {high:+}")
    if number % step:
        raise RecordError(field, f"must be in steps of {step}")
    return int(number * 100)


def _axis(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 180:
        raise RecordError(field, "must be a whole number of degrees from 1 to 180")
    return int(text)


def _va(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise RecordError(field, "must be like 1.0, 0.8, 20/20, 6/6 or 5.0")
    text = str(value).strip().upper()
    if text in _WORD_VA:
        return text
    snellen = _SNELLEN_VA.match(text)
    if snellen and 1 <= int(snellen.group(2)) <= 800:
        return text
    if _FIVE_POINT_VA.match(text) and Decimal("3.0") <= Decimal(text) <= Decimal("5.3"):
        return text
    if _DECIMAL_VA.match(text) and Decimal("0.01") <= Decimal(text) <= Decimal("2.0"):
        return text if "." in text else f"{text}.0"
    raise RecordError(field, "must be like 1.0, 0.8, 20/20, 6/6 or 5.0")


def _pd(value: Any) -> int | None:
    number = _number(value, "pd")
    if number is None:
        return None
    if not Decimal(40) <= number <= Decimal(80):
        raise RecordError("pd", "must be between 40 and 80 mm")
    if number % Decimal("0.5"):
        raise RecordError("pd", "must be in steps of 0.5 mm")
    return int(number * 10)


def _eye(data: Mapping[str, Any], prefix: str) -> Eye:
    eye = Eye(
        sphere=_power(data.get(f"{prefix}_sphere"), f"{prefix}_sphere", "sphere"),
        cylinder=_power(data.get(f"{prefix}_cylinder"), f"{prefix}_cylinder", "cylinder"),
        axis=_axis(data.get(f"{prefix}_axis"), f"{prefix}_axis"),
        add=_power(data.get(f"{prefix}_add"), f"{prefix}_add", "add"),
        va=_va(data.get(f"{prefix}_va"), f"{prefix}_va"),
    )
    if eye.sphere is None and any(v is not None for v in (eye.cylinder, eye.axis, eye.add, eye.va)):
        raise RecordError(f"{prefix}_sphere", "is needed with the other values of this eye")
    if eye.cylinder and eye.axis is None:
        raise RecordError(f"{prefix}_axis", "is needed with a cylinder")
    if eye.axis is not None and eye.cylinder is None:
        raise RecordError(f"{prefix}_cylinder", "is needed with an axis")
    return eye


def _text(data: Mapping[str, Any], field: str, max_len: int) -> str:
    return text_value(data, field, max_len) or ""


def parse_exam(data: Mapping[str, Any], *, today: date) -> EyeExam:
    """Check an exam as typed into the console; RecordError names the first field at fault."""
    od, os_ = _eye(data, "od"), _eye(data, "os")
    if not od.present and not os_.present:
        raise RecordError("od_sphere", "enter the sphere of at least one eye")
    examined_on = parse_day(data.get("examined_on"), "examined_on", today=today, oldest=timedelta(days=365 * 50))
    booking = data.get("booking_id")
    if booking in (None, ""):
        booking_id = None
    elif isinstance(booking, int) and not isinstance(booking, bool) and 1 <= booking < 2**31:
        booking_id = booking
    elif isinstance(booking, str) and booking.isascii() and booking.isdigit() and 1 <= int(booking) < 2**31:
        booking_id = int(booking)
    else:
        raise RecordError("booking_id", "must be a booking number")
    return EyeExam(
        examined_on=examined_on or today,
        od=od,
        os=os_,
        pd=_pd(data.get("pd")),
        notes=_text(data, "notes", MAX_NOTES),
        patient_name=_text(data, "patient_name", 100),
        patient_birth_date=parse_day(
            data.get("patient_birth_date"), "patient_birth_date", today=today, oldest=timedelta(days=365 * 120)
        ),
        booking_id=booking_id,
    )


# ------------------------------------------------------------------------------------------ storage

_COLUMNS = ("sphere", "cylinder", "axis", "add", "va")


def _view(r: EyeRecord) -> EyeRecordView:
    def eye(prefix: str) -> Eye:
        return Eye(*(getattr(r, f"{prefix}_{c}") for c in _COLUMNS))

    return EyeRecordView(
        r.id,
        r.shop_id,
        r.customer_id,
        r.booking_id,
        r.examined_on,
        r.patient_name,
        r.patient_birth_date,
        eye("od"),
        eye("os"),
        r.pd,
        r.notes,
        r.recorded_by,
        r.updated_at,
    )


def _values(exam: EyeExam) -> dict[str, Any]:
    values: dict[str, Any] = {
        "examined_on": exam.examined_on,
        "patient_name": exam.patient_name,
        "patient_birth_date": exam.patient_birth_date,
        "booking_id": exam.booking_id,
        "pd": exam.pd,
        "notes": exam.notes,
    }
    for prefix, eye in (("od", exam.od), ("os", exam.os)):
        for column in _COLUMNS:
            values[f"{prefix}_{column}"] = getattr(eye, column)
    return values


async def save_eye_record(
    db: Database,
    clock: Clock,
    shop_id: str,
    customer_id: int,
    exam: EyeExam,
    actor: Actor,
    *,
    record_id: int | None = None,
) -> EyeRecordView:
    """Store a new exam (or correct ``record_id``); LookupError if the customer or record is not this
    shop's, RecordError("booking_id") for a booking that is not theirs."""
    now = clock.now()
    values = _values(exam)
    async with db.transaction() as s:
        customer = await s.get(Customer, customer_id)
        if customer is None or customer.shop_id != shop_id:
            raise LookupError(f"no customer {customer_id} at {shop_id}")
        if exam.booking_id is not None:
            booking = await s.get(Booking, exam.booking_id)
            if booking is None or booking.shop_id != shop_id or booking.customer_id != customer_id:
                raise RecordError("booking_id", "is not a booking of this customer")
        if record_id is None:
            row = EyeRecord(shop_id=shop_id, customer_id=customer_id, created_at=now, **values)
            changed = [k for k, v in values.items() if v not in (None, "")]
            action = "eye_record.added"
            s.add(row)
        else:
            found = await s.get(EyeRecord, record_id)
            if found is None or found.shop_id != shop_id or found.customer_id != customer_id:
                raise LookupError(f"no eye record {record_id}")
            row = found
            changed = [k for k, v in values.items() if getattr(row, k) != v]
            action = "eye_record.updated"
            for key, value in values.items():
                setattr(row, key, value)
        row.recorded_by = recorded_by(actor)
        row.updated_at = now
        await s.flush()
        RecordChange(shop_id, customer_id, actor, now).note(s, action, row.id, changed)
        return _view(row)


async def eye_records_of(db: Database, shop_id: str, customer_id: int) -> list[EyeRecordView]:
    """The customer's exams at this shop, newest first."""
    async with db.reading() as s:
        rows = await s.scalars(
            select(EyeRecord)
            .where(EyeRecord.shop_id == shop_id, EyeRecord.customer_id == customer_id)
            .order_by(EyeRecord.examined_on.desc(), EyeRecord.id.desc())
        )
        return [_view(r) for r in rows]


async def latest_eye_record(
    db: Database, shop_id: str, customer_id: int, patient_name: str | None = None
) -> EyeRecordView | None:
    """The newest exam (of that person, when ``patient_name`` is given: "" is the customer)."""
    for record in await eye_records_of(db, shop_id, customer_id):
        if patient_name is None or record.patient_name == patient_name:
            return record
    return None


async def delete_eye_record(db: Database, clock: Clock, shop_id: str, record_id: int, actor: Actor) -> None:
    now = clock.now()
    async with db.transaction() as s:
        row = await s.get(EyeRecord, record_id)
        if row is None or row.shop_id != shop_id:
            raise LookupError(f"no eye record {record_id}")
        customer_id = row.customer_id
        await s.delete(row)
        RecordChange(shop_id, customer_id, actor, now).note(s, "eye_record.deleted", record_id)


# ------------------------------------------------------------------------------------------ words


def _value(lang: str, hundredths: int) -> str:
    """A power as the language writes it: "300" (度, zh) or "-3.00" (dioptres, en)."""
    if texts(lang).t("eye.value_style") == "degrees":
        return str(abs(hundredths))
    return power_text(hundredths) or ""


def _eye_line(lang: str, side: str, eye: Eye) -> str:
    t = texts(lang)
    assert eye.sphere is not None
    parts: list[str] = []
    if eye.sphere < 0:
        parts.append(t.t("eye.myopia", value=_value(lang, eye.sphere)))
    elif eye.sphere > 0:
        parts.append(t.t("eye.hyperopia", value=_value(lang, eye.sphere)))
    else:
        parts.append(t.t("eye.plano"))
    if eye.cylinder:
        parts.append(t.t("eye.astigmatism", value=_value(lang, eye.cylinder)))
    if eye.add:
        parts.append(t.t("eye.addition", value=_value(lang, eye.add)))
    if eye.va:
        parts.append(t.t("eye.acuity", va=eye.va))
    return t.t("eye.line", eye=t.t(f"eye.{side}"), parts=t.t("eye.part_sep").join(parts))


def eye_summary(record: EyeRecordView | EyeExam, lang: str, *, recall_on: date | None = None) -> str:
    """The result in plain words from the catalog, e.g. "右眼近视约300度，散光50度" /
    "Right eye: short-sighted, -3.00; astigmatism -0.50"; one line per eye, then PD and recall."""
    t = texts(lang)
    when = t.format_date(record.examined_on)
    title = (
        t.t("eye.title_for", name=record.patient_name, date=when)
        if record.patient_name
        else t.t("eye.title", date=when)
    )
    lines = [title]
    for side, eye in (("right", record.od), ("left", record.os)):
        if eye.present:
            lines.append(_eye_line(lang, side, eye))
    if record.pd is not None:
        lines.append(t.t("eye.pd", pd=pd_text(record.pd)))
    if recall_on is not None:  # "around May 2027": a month, the year included
        month = t.t("eye.month", year=recall_on.year, month=t.list("format.months")[recall_on.month - 1])
        lines.append(t.t("eye.recall", date=month))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ recall


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _myopia(record: EyeRecordView | EyeExam) -> int | None:
    """The more short-sighted eye's spherical equivalent (hundredths), or None."""
    values = [e.spherical_equivalent for e in (record.od, record.os) if e.spherical_equivalent is not None]
    return min(values) if values else None


def recall_due(
    record: EyeRecordView | EyeExam,
    *,
    birth_date: date | None = None,
    age: int | None = None,
    rules: EyeRecallRules | None = None,
    previous: EyeRecordView | EyeExam | None = None,
) -> date:
    """When this person should be examined again: short-sighted children every 6 months (3 if the
    myopia grew by 0.50 D or more since ``previous``), other children and adults yearly (months
    from ``rules``). Age from ``birth_date`` (default: the record's), else ``age``; unknown: adult."""
    rules = rules or EyeRecallRules()
    birth = birth_date or record.patient_birth_date
    years = age_on(birth, record.examined_on) if birth is not None else age
    se = _myopia(record)
    if years is None or years >= rules.child_until_age:
        return add_months(record.examined_on, rules.adult_months)
    if se is None or se > MYOPIA_SE:
        return add_months(record.examined_on, rules.child_months)
    before = _myopia(previous) if previous is not None else None
    if before is not None and before - se >= PROGRESSION:
        return add_months(record.examined_on, rules.child_progressing_months)
    return add_months(record.examined_on, rules.child_myopia_months)


def recall_for(shop: ShopConfig, record: EyeRecordView, previous: EyeRecordView | None = None) -> date:
    """``recall_due`` with the shop's rules (the record's own birth date)."""
    return recall_due(record, rules=shop.eye_recall, previous=previous)
