"""Eye exam records: the optometrist's result per eye (sphere, cylinder, axis, add, visual acuity),
PD and notes; checked on entry, summarised in plain words for the customer, and the recall date.

Ranges: sphere -30..+30 and cylinder -10..+10 in 0.25 steps, axis 1..180 (whole degrees, needed
with a cylinder), add 0..4 in 0.25 steps, PD 40..80 mm in 0.5 steps; visual acuity as decimal
(1.0, 0.8), Snellen (20/20, 6/6), five-point (5.0) or CF/HM/LP/NLP. A bad value raises RecordError
naming the field (od_* right eye, os_* left eye). Powers are kept in hundredths of a dioptre.
Recall (``recall_due``): short-sighted children every 6 months (3 when it grew since the last
exam), other children and adults yearly; the shop's config ``eye_recall`` sets the months.
``recalls_due`` lists, for the optometrist, each person (the customer, or their child) whose
latest exam's recall date has come or comes within a window; ``send_recall`` writes the check-up
reminder to the customer's latest chat in their language (once per exam, in the audit trail
as ``eye_record.recall_sent``, which names no eye values). ``send_due_recalls`` is the daily
automatic run (bot/usecases/recalls.py): the same once-per-exam send, with a "book" button, to
each person due within ``eye_recall.days_before`` days, held back by consent, a visit booked or
a recent rebook nudge.
Eye data is personal health data: only the shop's staff and the customer see it, and nothing
here logs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import select

from core.audit import RecordError
from core.clock import Clock
from core.config import EyeRecallRules, ShopConfig
from core.db import Database
from core.i18n import texts
from core.messages import Button, OutgoingMessage
from core.models import ACTIVE_STATUSES, AuditEvent, Booking, Customer, EyeRecord, Reminder, ReminderStatus
from core.ratings import latest_chat, queue_in_chat
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


RecallRule = Literal["adult", "child", "child_myopia", "child_progressing"]


def recall_rule(
    record: EyeRecordView | EyeExam,
    *,
    birth_date: date | None = None,
    age: int | None = None,
    rules: EyeRecallRules | None = None,
    previous: EyeRecordView | EyeExam | None = None,
) -> tuple[RecallRule, date]:
    """Which recall rule applies to this person and the date it gives (see ``recall_due``)."""
    rules = rules or EyeRecallRules()
    birth = birth_date or record.patient_birth_date
    years = age_on(birth, record.examined_on) if birth is not None else age
    se = _myopia(record)
    if years is None or years >= rules.child_until_age:
        return "adult", add_months(record.examined_on, rules.adult_months)
    if se is None or se > MYOPIA_SE:
        return "child", add_months(record.examined_on, rules.child_months)
    before = _myopia(previous) if previous is not None else None
    if before is not None and before - se >= PROGRESSION:
        return "child_progressing", add_months(record.examined_on, rules.child_progressing_months)
    return "child_myopia", add_months(record.examined_on, rules.child_myopia_months)


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
    return recall_rule(record, birth_date=birth_date, age=age, rules=rules, previous=previous)[1]


def recall_for(shop: ShopConfig, record: EyeRecordView, previous: EyeRecordView | None = None) -> date:
    """``recall_due`` with the shop's rules (the record's own birth date)."""
    return recall_due(record, rules=shop.eye_recall, previous=previous)


def previous_of(records: Sequence[EyeRecordView], record: EyeRecordView) -> EyeRecordView | None:
    """The exam of the same person (customer and patient) before ``record`` among ``records``
    (newest first, as ``eye_records_of`` gives them): what tells whether a child's myopia grew."""
    mine = [r for r in records if r.customer_id == record.customer_id and r.patient_name == record.patient_name]
    after = False
    for r in mine:
        if after:
            return r
        after = r.id == record.id
    return None


# ------------------------------------------------------------------------------------------ recall list


RECALL_WINDOW_DAYS = 30  # the optometrist's list shows recalls due within this many days (and overdue ones)
RECALL_SENT = "eye_record.recall_sent"


@dataclass(frozen=True)
class RecallDue:
    """One person due for a check-up: their latest exam, the recall date and rule, and when the
    reminder went to the customer's chat (None: not yet). No eye values: this is a to-do list."""

    record_id: int
    customer_id: int
    customer_name: str
    patient_name: str  # "" = the customer
    examined_on: date
    recall_on: date
    rule: RecallRule
    reminded_at: datetime | None

    def as_json(self, today: date) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "customer_id": self.customer_id,
            "customer": self.customer_name,
            "patient_name": self.patient_name,
            "examined_on": self.examined_on.isoformat(),
            "recall_on": self.recall_on.isoformat(),
            "overdue": self.recall_on < today,
            "rule": self.rule,
            "reminded_at": self.reminded_at.isoformat() if self.reminded_at else None,
        }


async def recalls_due(
    db: Database, shop: ShopConfig, shop_id: str, today: date, *, within_days: int = RECALL_WINDOW_DAYS
) -> list[RecallDue]:
    """Everyone at this shop whose latest exam says "come back" on or before ``today`` +
    ``within_days``, soonest (most overdue) first. One row per person: a customer and each child
    they brought are separate people (``patient_name``); an older exam of someone examined again
    since is not due."""
    until = today + timedelta(days=within_days)
    async with db.reading() as s:
        rows = list(
            await s.execute(
                select(EyeRecord, Customer.display_name)
                .join(Customer, Customer.id == EyeRecord.customer_id)
                .where(EyeRecord.shop_id == shop_id)
                .order_by(
                    EyeRecord.customer_id, EyeRecord.patient_name, EyeRecord.examined_on.desc(), EyeRecord.id.desc()
                )
            )
        )
        people: dict[tuple[int, str], list[tuple[EyeRecordView, str]]] = {}
        for record, name in rows:
            people.setdefault((record.customer_id, record.patient_name), []).append((_view(record), name))
        due: list[tuple[EyeRecordView, str, RecallRule, date]] = []
        for exams in people.values():
            latest, name = exams[0]
            previous = exams[1][0] if len(exams) > 1 else None
            rule, on = recall_rule(latest, rules=shop.eye_recall, previous=previous)
            if on <= until:
                due.append((latest, name, rule, on))
        sent: dict[int, datetime] = {}
        if due:
            for subject_id, at in await s.execute(
                select(AuditEvent.subject_id, AuditEvent.at).where(
                    AuditEvent.shop_id == shop_id,
                    AuditEvent.action == RECALL_SENT,
                    AuditEvent.subject_id.in_([r.id for r, *_ in due]),
                )
            ):
                if subject_id is not None and (subject_id not in sent or at > sent[subject_id]):
                    sent[subject_id] = at
    out = [
        RecallDue(r.id, r.customer_id, name, r.patient_name, r.examined_on, on, rule, sent.get(r.id))
        for r, name, rule, on in due
    ]
    return sorted(out, key=lambda x: (x.recall_on, x.customer_id, x.patient_name))


def recall_text(record: EyeRecordView, shop: ShopConfig, lang: str, recall_on: date) -> str:
    """The check-up reminder as the customer reads it: when they (or their child) were examined,
    the month to come back, and an invitation to book."""
    t = texts(lang)

    def month(day: date) -> str:
        return t.t("eye.month", year=day.year, month=t.list("format.months")[day.month - 1])

    values = {"shop": shop.name.get(t.lang), "date": month(record.examined_on), "recall": month(recall_on)}
    if record.patient_name:
        return t.t("eye_recall.reminder_for", name=record.patient_name, **values)
    return t.t("eye_recall.reminder", **values)


class RecallRefused(Exception):
    """The reminder was not sent: ``already_sent``, ``not_latest`` (a newer exam of that person
    exists) or ``no_channel`` (the customer has no chat with us)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def send_recall(
    db: Database,
    clock: Clock,
    shop: ShopConfig,
    shop_id: str,
    record_id: int,
    actor: Actor,
    *,
    automatic: bool = False,
) -> int:
    """Write the check-up reminder for exam ``record_id`` to the customer's latest chat (outbox row,
    transcript line and audit row in one transaction); returns the outbox id. LookupError: no
    such exam at this shop; RecallRefused otherwise (once per exam, whoever sends it: two staff at
    once, staff and the daily run, or two server processes send one). ``automatic``: the daily
    run's text (``recalls.auto*``) with a "book" button."""
    now = clock.now()
    async with db.transaction() as s:
        row = await s.scalar(select(EyeRecord).where(EyeRecord.id == record_id).with_for_update())
        if row is None or row.shop_id != shop_id:
            raise LookupError(f"no eye record {record_id}")
        sent = await s.scalar(
            select(AuditEvent.id).where(
                AuditEvent.shop_id == shop_id, AuditEvent.action == RECALL_SENT, AuditEvent.subject_id == record_id
            )
        )
        if sent is not None:
            raise RecallRefused("already_sent")
        exams = [
            _view(r)
            for r in await s.scalars(
                select(EyeRecord)
                .where(
                    EyeRecord.shop_id == shop_id,
                    EyeRecord.customer_id == row.customer_id,
                    EyeRecord.patient_name == row.patient_name,
                )
                .order_by(EyeRecord.examined_on.desc(), EyeRecord.id.desc())
            )
        ]
        if exams[0].id != record_id:
            raise RecallRefused("not_latest")
        conversation = await latest_chat(s, shop_id, row.customer_id)
        if conversation is None:
            raise RecallRefused("no_channel")
        record = exams[0]
        recall_on = recall_for(shop, record, exams[1] if len(exams) > 1 else None)
        if automatic:
            message = auto_recall_message(record, shop, conversation.language, recall_on)
        else:
            message = OutgoingMessage(recall_text(record, shop, conversation.language, recall_on))
        extra: dict[str, Any] = {"eye_recall": record_id, **({"automatic": True} if automatic else {})}
        outbox = queue_in_chat(s, conversation, message, now, author=recorded_by(actor), extra=extra)
        change = RecordChange(shop_id, row.customer_id, actor, now)
        if automatic:
            change.note(s, RECALL_SENT, record_id, automatic=True)
        else:
            change.note(s, RECALL_SENT, record_id)
        await s.flush()
        return outbox.id


# ------------------------------------------------------------------------------------------ automatic recalls

RECALL_BOOK_PAYLOAD = "m:book"  # the chat's "book" menu button: the booking form starts
RECENT_NUDGE = timedelta(days=30)  # a "time for the next one?" nudge (rebook reminder) this recent stands in
AUTO_ACTOR = "recall"  # Actor.system("recall"): who the audit trail names for the daily run


def auto_recall_message(record: EyeRecordView, shop: ShopConfig, lang: str, recall_on: date) -> OutgoingMessage:
    """The daily run's check-up reminder: when they (or their child) were examined, the month to
    come back, and a "book" button (``recalls.*`` in the catalogs)."""
    t = texts(lang)

    def month(day: date) -> str:
        return t.t("eye.month", year=day.year, month=t.list("format.months")[day.month - 1])

    values = {"shop": shop.name.get(t.lang), "date": month(record.examined_on), "recall": month(recall_on)}
    if record.patient_name:
        text = t.t("recalls.auto_for", name=record.patient_name, **values)
    else:
        text = t.t("recalls.auto", **values)
    return OutgoingMessage(text, (Button(t.t("recalls.book"), RECALL_BOOK_PAYLOAD),))


@dataclass(frozen=True)
class RecallRun:
    """What one daily run did at one shop: exams it sent the reminder for, and the ones it left
    (reason -> exam ids): ``no_consent``, ``booked`` (an upcoming visit), ``nudged`` (a rebook
    nudge went out lately), ``too_old`` (overdue beyond ``max_overdue_days``: staff phone them),
    ``no_channel``, ``already_sent`` (another process or staff were first) / ``not_latest``."""

    sent: tuple[int, ...] = ()
    left: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def auto_recall_due(shop: ShopConfig, today: date, due: RecallDue) -> str | None:
    """Why the daily run leaves this check-up alone (None: send it), by the list's facts alone."""
    if due.reminded_at is not None:
        return "already_sent"
    if due.recall_on < today - timedelta(days=shop.eye_recall.max_overdue_days):
        return "too_old"
    return None


async def _held_back(
    db: Database, shop: ShopConfig, shop_id: str, customer_ids: Sequence[int], now: datetime
) -> dict[int, str]:
    """Customers the daily run does not write to today, and why (consent, a visit booked, a nudge)."""
    if not customer_ids:
        return {}
    ids = list(set(customer_ids))
    out: dict[int, str] = {}
    async with db.reading() as s:
        if shop.eye_recall.consent == "notices":
            opted = set(await s.scalars(select(Customer.id).where(Customer.id.in_(ids), Customer.notices.is_(True))))
            out.update({cid: "no_consent" for cid in ids if cid not in opted})
        booked = await s.scalars(
            select(Booking.customer_id).where(
                Booking.shop_id == shop_id,
                Booking.customer_id.in_(ids),
                Booking.status.in_(ACTIVE_STATUSES),
                Booking.end_at > now,
            )
        )
        for cid in booked:
            if cid is not None:
                out.setdefault(cid, "booked")
        nudged = await s.scalars(
            select(Booking.customer_id)
            .join(Reminder, Reminder.booking_id == Booking.id)
            .where(
                Booking.shop_id == shop_id,
                Booking.customer_id.in_(ids),
                Reminder.kind == "rebook",
                Reminder.status == ReminderStatus.QUEUED,
                Reminder.queued_at >= now - RECENT_NUDGE,
            )
        )
        for cid in nudged:
            if cid is not None:
                out.setdefault(cid, "nudged")
    return out


async def send_due_recalls(db: Database, clock: Clock, shop: ShopConfig, shop_id: str) -> RecallRun:
    """The daily run at one shop: ONE check-up reminder (``send_recall``, ``automatic``) to each
    person whose latest exam comes due within ``days_before`` days (or is overdue by at most
    ``max_overdue_days``), unless the customer has not consented (``consent: notices``), has a
    visit booked, or was nudged to rebook lately. Safe to run again, from any process: each exam
    is reminded once, whoever sends it (the exam row is locked and the audit row checked in the
    sending transaction)."""
    now = clock.now()
    rules = shop.eye_recall
    today = now.astimezone(shop.tz).date()
    due = await recalls_due(db, shop, shop_id, today, within_days=rules.days_before)
    left: dict[str, list[int]] = {}
    candidates: list[RecallDue] = []
    for item in due:
        reason = auto_recall_due(shop, today, item)
        if reason is None:
            candidates.append(item)
        else:
            left.setdefault(reason, []).append(item.record_id)
    held = await _held_back(db, shop, shop_id, [c.customer_id for c in candidates], now)
    sent: list[int] = []
    actor = Actor.system(AUTO_ACTOR)
    for item in candidates:
        reason = held.get(item.customer_id)
        if reason is None:
            try:
                await send_recall(db, clock, shop, shop_id, item.record_id, actor, automatic=True)
            except RecallRefused as exc:
                reason = exc.reason
            except LookupError:  # deleted meanwhile (the customer asked to be forgotten)
                reason = "not_latest"
        if reason is None:
            sent.append(item.record_id)
        else:
            left.setdefault(reason, []).append(item.record_id)
    return RecallRun(tuple(sent), {k: tuple(v) for k, v in left.items()})
