"""Dates and times typed into a booking chat, in Chinese or English.

This module owns the *reading* of day / time-of-day phrases ("周六上午10点", "下周三",
"tomorrow at 3pm", "28/11") and the *writing* of day labels for buttons ("今天 11/21 周六",
"Tue 24 Nov"). It is pure: every function takes the shop's local ``today`` as an argument and
never reads the clock, the network or the environment.

Public API (all total functions: they return ``None`` / an empty :class:`When` for text they do
not understand, and never raise on any ``str``):

* :func:`parse_when` -> :class:`When` (date, time, period and the spans of text consumed)
* :func:`parse_date`, :func:`parse_time`, :func:`parse_period` -- single-field shortcuts
* :func:`format_day_label` -- "今天 11/21 周六" / "Today Sat 21 Nov"
* :func:`period_of` -- the period a clock time falls in

Interpretation rules (the tests in ``tests/test_when.py`` pin each of them):

* Weeks start on Monday.
* A bare weekday ("周六", "星期天", "sat", "saturday", "this saturday", "coming friday") is the
  next such day, *today included*: "周六" said on a Saturday means today.
* "这周六" / "本周六" / "这个星期一" is that weekday in the current calendar week, even if it is
  already past (the caller decides how to answer "这周一" said on a Wednesday).
* "下周三" / "下个星期三" / "下礼拜三" / "next wednesday" / "wednesday next week" is the Wednesday
  of the next calendar week ("下下周三" the week after). So on Wednesday 18 Nov "next friday"
  is 27 Nov, and on Saturday 21 Nov it is also 27 Nov.
* "周末" / "这周末" / "weekend" / "this weekend" is a range, Saturday to Sunday of this calendar
  week (today alone on a Sunday, which is then the date); "下周末" / "next weekend" next week's.
  Which of the two days is the customer's to say.
* A named range ("下周", "下个星期", "this week", "next week", "the week after next", "下个月",
  "next month", "月底", "end of the month", "later this week") is no one day: ``When.from_date``
  is its first bookable day (the Monday of that week, today for this week, tomorrow for "later
  this week", the 1st of next month, the last seven days of this month), and ``When.date`` stays
  ``None``. A weekday said with it falls inside it ("next week, Tuesday").
* A month and day without a year ("11月28日", "nov 28", "28/11") that has already passed this
  year means next year; a day alone ("28号", "the 28th") that has passed this month means next
  month. Today counts as not passed. Impossible dates ("2月30日") give ``None``.
* Numeric dates "a/b" or "a.b": if one number is > 12 it is the day ("28/11" and "11/28" and
  "11.28" are all 28 Nov). If both are <= 12 the default is month first ("5/6" is 6 May), as
  Chinese customers write it and as our own zh buttons print it; pass ``day_first=True`` to
  read it as day first. ISO "2026-11-28" / "2026年11月28日" / "2026/11/28" are taken as written
  (no roll-over, may be in the past).
* Hours without am/pm ("3点", "at 3", "9:15") are returned as written; a period word anywhere in
  the text ("下午", "tonight", "in the afternoon") resolves them ("明天下午 3点" -> 15:00), and
  ``prefer_afternoon_for_small_hours=True`` turns a still-ambiguous 1-7 into 13-19.
  "晚上" shifts 5-11 to 17-23 and 12 to 00:00; 1-4 stay (night hours). Hours written with a
  leading zero ("09:15") or >= 13 are 24-hour times.
* Periods are "morning" (上午, 早上, 凌晨, morning), "afternoon" (中午, 下午, afternoon) and
  "evening" (傍晚, 晚上, 今晚, evening, night, tonight). ``When.period`` is the period word the
  customer typed (the time's own prefix first); it is not derived from a clock time -- use
  :func:`period_of` for that.
* When the text holds several dates or times, the first valid one wins.
  A range "3-4点" / "三到四点" / "3-4pm" gives its start ("11-1pm" starts at 11:00); English
  ranges without am/pm ("10:30-11:00") give the first time, and the end is left in the text.

Parsing is linear in the length of the text: the text is normalised (NFKC + lower case) once,
every regular expression uses bounded repetition only, and a single combined expression finds
the next place where any rule can start.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "Lang",
    "Period",
    "When",
    "format_day_label",
    "parse_date",
    "parse_period",
    "parse_time",
    "parse_when",
    "period_of",
]

Period = Literal["morning", "afternoon", "evening"]
Lang = Literal["zh", "en"]

# ---------------------------------------------------------------------------------------------
# Word lists: the only place where names of days, months, numbers and periods live.
# ---------------------------------------------------------------------------------------------

WEEKDAY_LABEL: Final[Mapping[Lang, tuple[str, ...]]] = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
MONTH_LABEL_EN: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip
TODAY_LABEL: Final[Mapping[Lang, str]] = {"zh": "今天", "en": "Today"}
TOMORROW_LABEL: Final[Mapping[Lang, str]] = {"zh": "明天", "en": "Tomorrow"}

# Chinese weekday characters after 周 / 星期 / 礼拜 -> Monday-based index.
CN_WEEKDAY: Final[Mapping[str, int]] = {
    "一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
    "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6,
}  # fmt: skip
EN_WEEKDAY: Final[Mapping[str, int]] = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tues": 1, "tue": 1,
    "wednesday": 2, "weds": 2, "wed": 2,
    "thursday": 3, "thurs": 3, "thur": 3, "thu": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
EN_MONTH: Final[Mapping[str, int]] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
EN_NUMBER: Final[Mapping[str, int]] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
CN_DIGIT: Final[Mapping[str, int]] = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
CN_NUMERAL_CHARS: Final = "零〇一二两三四五六七八九十廿卅"

# Relative day words -> (days from today, period implied by the word).
CN_RELATIVE_DAY: Final[Mapping[str, tuple[int, Period | None]]] = {
    "今天": (0, None), "今日": (0, None), "今儿": (0, None),
    "今早": (0, "morning"), "今晨": (0, "morning"), "今晚": (0, "evening"),
    "明天": (1, None), "明日": (1, None), "明儿": (1, None),
    "明早": (1, "morning"), "明晨": (1, "morning"), "明晚": (1, "evening"),
    "后天": (2, None), "后日": (2, None), "大后天": (3, None),
}  # fmt: skip
EN_RELATIVE_DAY: Final[Mapping[str, tuple[int, Period | None]]] = {
    "today": (0, None), "tonight": (0, "evening"), "tonite": (0, "evening"),
    "tomorrow": (1, None), "tomorow": (1, None), "tommorow": (1, None),
    "tommorrow": (1, None), "tmrw": (1, None), "tmr": (1, None),
}  # fmt: skip
# Period words that may stand alone ("明天下午") or prefix a clock time ("下午3点").
CN_PERIOD: Final[Mapping[str, Period]] = {
    "上午": "morning", "早上": "morning", "早晨": "morning", "清早": "morning",
    "一早": "morning", "凌晨": "morning",
    "中午": "afternoon", "下午": "afternoon", "午后": "afternoon",
    "傍晚": "evening", "晚上": "evening", "晚间": "evening", "夜里": "evening", "夜间": "evening",
}  # fmt: skip
# One-character periods, only accepted directly before a clock time ("早8点", "晚7点").
CN_PERIOD_PREFIX_ONLY: Final[Mapping[str, Period]] = {"早": "morning", "晚": "evening"}
EN_PERIOD: Final[Mapping[str, Period]] = {
    "morning": "morning",
    "afternoon": "afternoon",
    "evening": "evening",
    "night": "evening",
}
# Characters that turn "一点" into "a little" (早一点, 快一点, 有一点, 差一点 ...).
CN_LITTLE_BEFORE: Final = "早晚快慢多少有好大小高低近远贵宜差再"
# Around a bare "一点" (no period word before it), what makes it one o'clock: a day before it
# ("明天一点", "周六一点", "5号一点") or a word after it that only follows a time ("一点钟", "一点以后").
CN_ONE_OCLOCK_BEFORE: Final = ("", " ", *"天日号六五四三二在到约是等从")
CN_ONE_OCLOCK_AFTER: Final = ("", " ", *"钟前后以左到至整开见可行吧呢？?过")
# Words before "2h" that make it a duration, not a clock time.
EN_DURATION_WORDS: Final = frozenset({"for", "in", "about", "take", "takes", "within", "lasts"})

# ---------------------------------------------------------------------------------------------
# Small value types
# ---------------------------------------------------------------------------------------------

_DayFn = Callable[[dt.date], "dt.date | None"]


@dataclass(frozen=True, slots=True)
class _Clock:
    hour: int
    minute: int
    ambiguous: bool  # no am/pm / period / 24-hour hint: the hour may mean hour + 12


@dataclass(frozen=True, slots=True)
class _Hit:
    day: _DayFn | None = None
    day_alt: _DayFn | None = None  # day-first reading of an ambiguous numeric date
    clock: _Clock | None = None
    period: Period | None = None
    exact: bool = False  # a calendar date ("29 Nov", "12月20日"): wins over a weekday said with it
    past: bool = False  # "上周末", "last week", "yesterday": about the past, never a booking day
    from_day: _DayFn | None = None  # a named range ("next week"): its first day
    until_day: _DayFn | None = None  # ... and its last, when it is short ("this weekend": Sunday)


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    hit: _Hit


@dataclass(frozen=True, slots=True)
class When:
    """What :func:`parse_when` found.

    ``spans`` are ``(start, end)`` offsets into the *original* text of each piece used, in text
    order; ``span`` covers them all (it may include words between a date and a time that are
    far apart: use :meth:`remainder` to strip exactly the consumed pieces).
    """

    date: dt.date | None = None
    time: dt.time | None = None
    period: Period | None = None
    span: tuple[int, int] | None = None
    spans: tuple[tuple[int, int], ...] = ()
    past: bool = False  # the text speaks of a past day ("上周末", "last week")
    from_date: dt.date | None = None  # a named range without a day ("下周", "next week"): its first day
    until_date: dt.date | None = None  # the range's last day when it is short ("周末": the Sunday)

    @property
    def found(self) -> bool:
        """True when any date, time or period was recognised."""
        return bool(self.spans)

    def remainder(self, text: str) -> str:
        """``text`` without the consumed spans, whitespace runs collapsed.

        >>> parse_when("周六上午10点给豆豆洗澡", dt.date(2026, 11, 21)).remainder(
        ...     "周六上午10点给豆豆洗澡")
        '给豆豆洗澡'
        """
        if not self.spans:
            return text
        parts: list[str] = []
        pos = 0
        for start, end in self.spans:
            parts.append(text[pos:start])
            pos = max(pos, end)
        parts.append(text[pos:])
        return re.sub(r"\s+", " ", "".join(parts)).strip()


# ---------------------------------------------------------------------------------------------
# Number and date helpers
# ---------------------------------------------------------------------------------------------


def _int(s: str) -> int | None:
    """An ASCII, English-word or Chinese number below 100, else None."""
    if s.isascii() and s.isdigit():
        return int(s)
    if s in EN_NUMBER:
        return EN_NUMBER[s]
    return _cn_int(s)


def _cn_int(s: str) -> int | None:
    if not s:
        return None
    tens_prefix = {"廿": 20, "卅": 30}
    if s[0] in tens_prefix:
        rest = s[1:]
        if not rest:
            return tens_prefix[s[0]]
        return tens_prefix[s[0]] + CN_DIGIT[rest] if len(rest) == 1 and rest in CN_DIGIT else None
    if "十" in s:
        left, _, right = s.partition("十")
        if len(left) > 1 or len(right) > 1:
            return None
        tens = 1 if not left else CN_DIGIT.get(left)
        ones = 0 if not right else CN_DIGIT.get(right)
        if tens is None or ones is None or tens == 0:
            return None
        return tens * 10 + ones
    if len(s) == 1:
        return CN_DIGIT.get(s)
    if len(s) == 2 and s[0] in "零〇":
        return CN_DIGIT.get(s[1])
    return None


def _make_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except (ValueError, OverflowError):
        return None


def _plus_days(days: int) -> _DayFn:
    def resolve(today: dt.date) -> dt.date | None:
        return today + dt.timedelta(days=days)

    return resolve


def _next_weekday(weekday: int) -> _DayFn:
    """The next ``weekday``, today included."""

    def resolve(today: dt.date) -> dt.date | None:
        return today + dt.timedelta(days=(weekday - today.weekday()) % 7)

    return resolve


def _weekday_of_week(weekday: int, weeks_ahead: int) -> _DayFn:
    """``weekday`` of the Monday-based calendar week ``weeks_ahead`` weeks from this one."""

    def resolve(today: dt.date) -> dt.date | None:
        monday = today - dt.timedelta(days=today.weekday())
        return monday + dt.timedelta(days=7 * weeks_ahead + weekday)

    return resolve


def _weekend(weeks_ahead: int) -> _DayFn:
    """Saturday of this (or a later) calendar week; this weekend on a Sunday is today."""

    def resolve(today: dt.date) -> dt.date | None:
        if weeks_ahead == 0 and today.weekday() == 6:
            return today
        return _weekday_of_week(5, weeks_ahead)(today)

    return resolve


def _month_day(month: int, day: int) -> _DayFn:
    """Month and day without a year: this year, or next year if already past."""

    def resolve(today: dt.date) -> dt.date | None:
        year = today.year if (month, day) >= (today.month, today.day) else today.year + 1
        return _make_date(year, month, day)

    return resolve


def _exact(year: int, month: int, day: int) -> _DayFn:
    def resolve(today: dt.date) -> dt.date | None:
        return _make_date(year, month, day)

    return resolve


def _day_of_month(day: int, months_ahead: int | None = None) -> _DayFn:
    """Day of this month (next month if past), or of the month ``months_ahead`` from now."""

    def resolve(today: dt.date) -> dt.date | None:
        ahead = months_ahead
        if ahead is None:
            ahead = 0 if day >= today.day else 1
        index = today.month - 1 + ahead
        return _make_date(today.year + index // 12, index % 12 + 1, day)

    return resolve


def _valid_clock(hour: int | None, minute: int | None, *, ambiguous: bool) -> _Clock | None:
    if hour is None or minute is None or not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return _Clock(hour, minute, ambiguous=ambiguous and 1 <= hour <= 12)


def _apply_period(clock: _Clock, period: Period | None, *, early: bool = False) -> _Clock:
    """Resolve an hour written without am/pm using a period word."""
    if not clock.ambiguous or period is None:
        return clock
    hour = clock.hour
    if period == "afternoon" and hour < 12:
        hour += 12
    elif period == "evening":
        if 5 <= hour <= 11:
            hour += 12
        elif hour == 12:
            hour = 0
    elif period == "morning" and early and hour == 12:
        hour = 0
    return _Clock(hour, clock.minute, ambiguous=False)


def _alt(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first so that the longest one wins."""
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


# ---------------------------------------------------------------------------------------------
# Rules: a regular expression (bounded repetition only) and a handler building a _Hit.
# ---------------------------------------------------------------------------------------------

_CN_NUM = f"[{CN_NUMERAL_CHARS}]{{1,3}}"
_NUM = f"(?:[0-9]{{1,2}}|{_CN_NUM})"  # day, month or hour: digits or Chinese numerals
_EN_MONTHS = _alt(EN_MONTH)
_EN_WEEKDAYS = _alt(EN_WEEKDAY)
_EN_HOUR_WORDS = _alt(w for w, n in EN_NUMBER.items() if w not in ("a", "an"))
_EN_COUNT = rf"(?:[0-9]{{1,3}}|a\s{{1,3}}couple\s{{1,3}}of|{_alt(EN_NUMBER)})"
_SP = r"\s{1,3}"
# What may not follow a number for it to be a date rather than a time, a price or a quantity.
_NOT_TIME_AFTER = r"(?!\s?(?:[ap]\.?m(?![a-z])|[:.][0-9]|点|时|h(?![a-z])|o'?clock))"
# Words after a number that make it a quantity, not an hour ("about 6 kg", "like 3 weeks").
_UNITS_EN_AFTER = (
    r"kg|kgs|kilos?|lbs?|pounds?|years?|months?|weeks?|days?|minutes?|mins?|hours?|hrs?|dogs?|cats?|times?|people|yuan|rmb"
)
_UNITS = (
    r"小时|个|元|块|折|倍|公斤|斤|米|度|分|点|%|kg|km|cm|mm|ml|h(?![a-z])|hours?|hrs?|mins?"
    r"|[ap]\.?m(?![a-z])"
)

_Handler = Callable[["re.Match[str]", str], "_Hit | None"]


def _h_cn_relative_day(m: re.Match[str], text: str) -> _Hit | None:
    days, period = CN_RELATIVE_DAY[m["w"]]
    return _Hit(day=_plus_days(days), period=period)


def _h_en_relative_day(m: re.Match[str], text: str) -> _Hit | None:
    if m["after"]:
        return _Hit(day=_plus_days(2))
    days, period = EN_RELATIVE_DAY[m["w"]]
    return _Hit(day=_plus_days(days), period=period)


def _h_cn_weekday(m: re.Match[str], text: str) -> _Hit | None:
    weekday = CN_WEEKDAY[m["d"]]
    rel = m["rel"] or ""
    if rel.startswith("下下"):
        return _Hit(day=_weekday_of_week(weekday, 2))
    if rel.startswith("下"):
        return _Hit(day=_weekday_of_week(weekday, 1))
    if rel:  # 这 / 这个 / 本
        return _Hit(day=_weekday_of_week(weekday, 0))
    return _Hit(day=_next_weekday(weekday))


def _h_weekend(m: re.Match[str], text: str) -> _Hit | None:
    rel = m["rel"] or ""
    weeks = 2 if rel.startswith("下下") else 1 if rel.startswith(("下", "next")) else 0
    return _Hit(from_day=_weekend(weeks), until_day=_weekday_of_week(6, weeks))


def _week_from(weeks_ahead: int, skip_today: bool = False) -> _DayFn:
    """The first day of the calendar week ``weeks_ahead`` from this one (today for this week)."""

    def resolve(today: dt.date) -> dt.date | None:
        if weeks_ahead == 0:
            return today + dt.timedelta(days=1) if skip_today else today
        return _weekday_of_week(0, weeks_ahead)(today)

    return resolve


def _month_from(part: str) -> _DayFn:
    """The first day of a month range: "next" month's 1st, or the last seven days of this one."""

    def resolve(today: dt.date) -> dt.date | None:
        first_next = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        if part == "next":
            return first_next
        return max(today, first_next - dt.timedelta(days=7))  # "end of the month"

    return resolve


def _h_cn_range(m: re.Match[str], text: str) -> _Hit | None:
    if m["month"]:
        return _Hit(from_day=_month_from("end" if m["month"] == "月底" else "next"))
    rel = m["rel"] or ""
    weeks = 2 if rel.startswith("下下") else 1 if rel.startswith("下") else 0
    return _Hit(from_day=_week_from(weeks, skip_today=bool(m["later"])))


def _h_en_range(m: re.Match[str], text: str) -> _Hit | None:
    if m["month"]:
        return _Hit(from_day=_month_from("next" if m["month"].startswith("next") else "end"))
    if m["after"]:
        return _Hit(from_day=_week_from(2))
    rel = m["rel"] or ""
    return _Hit(from_day=_week_from(1 if rel in ("next", "coming") else 0, skip_today=rel.startswith("later")))


def _h_en_weekday(m: re.Match[str], text: str) -> _Hit | None:
    weekday = EN_WEEKDAY[m["wd"]]
    if m["rel"] == "next" or m["nw"]:
        return _Hit(day=_weekday_of_week(weekday, 1))
    return _Hit(day=_next_weekday(weekday))


def _h_ymd(m: re.Match[str], text: str) -> _Hit | None:
    return _Hit(day=_exact(int(m["y"]), int(m["m"]), int(m["d"])), exact=True)


def _h_past(m: re.Match[str], text: str) -> _Hit | None:
    return _Hit(past=True)


def _h_cn_month_day(m: re.Match[str], text: str) -> _Hit | None:
    month, day = _int(m["m"]), _int(m["d"])
    if month is None or day is None:
        return None
    return _Hit(day=_month_day(month, day), exact=True)


def _h_cn_relative_month_day(m: re.Match[str], text: str) -> _Hit | None:
    day = _int(m["d"])
    if day is None:
        return None
    rel = m["rel"]
    ahead = 2 if rel.startswith("下下") else 1 if rel.startswith("下") else 0
    return _Hit(day=_day_of_month(day, ahead))


def _h_day_only(m: re.Match[str], text: str) -> _Hit | None:
    day = _int(m["d"])
    if day is None or not 1 <= day <= 31:
        return None
    return _Hit(day=_day_of_month(day), exact=True)


def _h_numeric_date(m: re.Match[str], text: str) -> _Hit | None:
    a, b = int(m["a"]), int(m["b"])
    if a == 0 or b == 0 or (a > 12 and b > 12) or max(a, b) > 31:
        return None
    alt: tuple[int, int] | None = None
    if a > 12:
        month, day = b, a
    elif b > 12:
        month, day = a, b
    else:
        month, day = a, b
        alt = (b, a) if a != b else None
    year_text = m["y"]
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        return _Hit(
            day=_exact(year, month, day),
            day_alt=_exact(year, alt[0], alt[1]) if alt else None,
            exact=True,
        )
    return _Hit(day=_month_day(month, day), day_alt=_month_day(*alt) if alt else None, exact=True)


def _h_en_month_day(m: re.Match[str], text: str) -> _Hit | None:
    month, day = EN_MONTH[m["mon"]], int(m["d"])
    if m["y"]:
        return _Hit(day=_exact(int(m["y"]), month, day), exact=True)
    return _Hit(day=_month_day(month, day), exact=True)


def _h_ordinal_day(m: re.Match[str], text: str) -> _Hit | None:
    day = int(m["d"])
    return _Hit(day=_day_of_month(day), exact=True) if 1 <= day <= 31 else None


def _h_cn_offset(m: re.Match[str], text: str) -> _Hit | None:
    if not (m["past"] or m["after"]):
        return None
    count = _int(m["n"])
    if count is None:
        return None
    unit = 1 if m["u"] in ("天", "日") else 7
    return _Hit(day=_plus_days(count * unit))


def _h_en_offset(m: re.Match[str], text: str) -> _Hit | None:
    raw = m["n"] or m["n2"] or ""
    count = 2 if raw.startswith("a ") or "couple" in raw else _int(raw)
    if count is None:
        return None
    unit_text = m["u"] or m["u2"] or ""
    unit = 7 if unit_text.startswith("week") else 1
    return _Hit(day=_plus_days(count * unit))


def _h_cn_period(m: re.Match[str], text: str) -> _Hit | None:
    return _Hit(period=CN_PERIOD[m["p"]])


def _h_en_period(m: re.Match[str], text: str) -> _Hit | None:
    return _Hit(day=_plus_days(0) if m["this"] else None, period=EN_PERIOD[m["p"]])


def _h_cn_time(m: re.Match[str], text: str) -> _Hit | None:
    hour_text, minute_text, prefix = m["h"], m["min"], m["pre"]
    if m["cm"] is not None:
        if not hour_text.isdigit():
            return None
        minute: int | None = int(m["cm"])
    elif minute_text is None:
        minute = 0
    else:
        minute = {"半": 30, "一刻": 15, "三刻": 45}.get(minute_text) or _int(minute_text)
    if hour_text == "一" and minute_text is None and m["cm"] is None:
        # "早一点", "快一点", "一点点", "一点儿" mean "a little", not one o'clock.
        before = text[m.start("h") - 1] if m.start("h") > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if (before and before in CN_LITTLE_BEFORE) or (after and after in "点儿"):
            return None
        if prefix is None and before not in CN_ONE_OCLOCK_BEFORE and after not in CN_ONE_OCLOCK_AFTER:
            return None  # "温和一点的", "有一点点敏感": only "明天一点", "一点钟", "一点可以吗" are one o'clock
    leading_zero = hour_text.startswith("0") and len(hour_text) == 2
    clock = _valid_clock(_int(hour_text), minute, ambiguous=not leading_zero)
    if clock is None:
        return None
    if prefix is None:
        return _Hit(clock=clock)
    period = CN_PERIOD.get(prefix) or CN_PERIOD_PREFIX_ONLY[prefix]
    clock = _apply_period(clock, period, early=prefix == "凌晨")
    return _Hit(clock=_Clock(clock.hour, clock.minute, ambiguous=False), period=period)


def _h_en_ampm(m: re.Match[str], text: str) -> _Hit | None:
    hour = _int(m["h"])
    minute = int(m["m"]) if m["m"] else 0
    if hour is None or not 1 <= hour <= 12:
        return None
    pm = m["ap"].startswith("p")
    if pm and m["h2"]:
        # "3-4pm" starts at 15:00, but "11-1pm" and "10-12pm" start in the morning.
        end = int(m["h2"]) % 12 + 12
        pm = hour % 12 + 12 <= end
    hour = hour % 12 + (12 if pm else 0)
    clock = _valid_clock(hour, minute, ambiguous=False)
    return _Hit(clock=clock) if clock else None


def _h_en_at(m: re.Match[str], text: str) -> _Hit | None:
    hour_text = m["h"]
    leading_zero = hour_text.startswith("0") and len(hour_text) == 2
    minute_text = m.groupdict().get("m")
    clock = _valid_clock(_int(hour_text), int(minute_text) if minute_text else 0, ambiguous=not leading_zero)
    return _Hit(clock=clock) if clock else None


def _h_en_word_minutes(m: re.Match[str], text: str) -> _Hit | None:
    words = m["mw"].replace("-", "").replace(" ", "")
    minute = {"thirty": 30, "fifteen": 15, "fortyfive": 45, "ofive": 5}[words]
    clock = _valid_clock(_int(m["h"]), minute, ambiguous=True)
    return _Hit(clock=clock) if clock else None


def _h_en_noon(m: re.Match[str], text: str) -> _Hit | None:
    hour = 0 if m["w"] == "midnight" else 12
    return _Hit(clock=_Clock(hour, 0, ambiguous=False))


def _h_hour_h(m: re.Match[str], text: str) -> _Hit | None:
    words = text[max(0, m.start() - 12) : m.start()].split()
    if words and words[-1] in EN_DURATION_WORDS:
        return None  # "takes 2h", "in 3h": a duration
    clock = _valid_clock(int(m["h"]), int(m["m"]) if m["m"] else 0, ambiguous=False)
    return _Hit(clock=clock) if clock else None


def _h_en_past_to(m: re.Match[str], text: str) -> _Hit | None:
    hour = _int(m["h"])
    amount = 30 if m["q"] == "half" else 15
    if hour is None or not 1 <= hour <= 12:
        return None
    if m["dir"] == "to":
        if m["q"] == "half":
            return None
        hour, minute = (hour - 1) or 12, 60 - amount
    else:
        minute = amount
    clock = _valid_clock(hour, minute, ambiguous=True)
    return _Hit(clock=clock) if clock else None


_CN_PREFIXES = _alt([*CN_PERIOD, *CN_PERIOD_PREFIX_ONLY])

_RULES_SOURCE: Final[tuple[tuple[str, _Handler], ...]] = (
    # ----- the past ("上周末美容师很温柔"): consumed so that no part of it reads as a future day
    (
        r"(?:上上?个?(?:周|星期|礼拜)(?:[一二三四五六日天1-7]|末)?|上个?月(?:[0-9]{1,2}\s?[日号])?|昨天|前天|昨晚|去年)",
        _h_past,
    ),
    (
        r"(?<![a-z])(?:last\s{1,3}(?:week-?end|week|month|year|time|visit|monday|tuesday|wednesday|thursday|friday|"
        r"saturday|sunday|mon|tue|wed|thu|fri|sat|sun)|yesterday|the\s{1,3}other\s{1,3}day)(?![a-z])",
        _h_past,
    ),
    # ----- dates, Chinese
    (f"(?P<w>{_alt(CN_RELATIVE_DAY)})", _h_cn_relative_day),
    (
        r"(?P<rel>下下个?|下个?|这个?|本)?(?:周|星期|礼拜)(?P<d>[一二三四五六日天]|[1-7](?![0-9]))",
        _h_cn_weekday,
    ),
    (
        r"(?<![0-9])(?P<y>[0-9]{4})\s?(?:年|[-/.])\s?(?P<m>[0-9]{1,2})\s?(?:月|[-/.])\s?"
        r"(?P<d>[0-9]{1,2})(?:\s?[日号]|(?![0-9]))",
        _h_ymd,
    ),
    (
        rf"(?<![0-9])(?P<m>{_NUM})\s?月\s?(?P<d>{_NUM})(?:\s?[日号]|(?![0-9个]))",
        _h_cn_month_day,
    ),
    (rf"(?P<rel>下下个?|下个?|这个?|本)月\s?(?P<d>{_NUM})\s?[日号]", _h_cn_relative_month_day),
    (rf"(?<![0-9第])(?P<d>{_NUM})\s?[号日](?![线楼房室门店位])", _h_day_only),
    (
        rf"(?<![0-9])(?:(?P<past>过)\s?)?(?P<n>[0-9]{{1,3}}|{_CN_NUM})\s?(?:个\s?)?"
        r"(?P<u>天|日|周|星期|礼拜)(?:\s?(?P<after>以后|之后|后))?",
        _h_cn_offset,
    ),
    (r"(?P<rel>下下个?|下个?|这个?|本)?周末", _h_weekend),
    (
        r"(?:(?P<rel>下下个?|下个?|这个?|本)(?:周|星期|礼拜)(?P<later>晚些|后面|后几天|稍晚)?"
        r"(?![一二三四五六日天末1-7])|(?P<month>下个?月(?:初)?|月底))",
        _h_cn_range,
    ),
    (
        rf"(?<![a-z])(?:(?P<after>the{_SP}week{_SP}after{_SP}next)|(?P<rel>this|next|coming|later{_SP}this)"
        rf"{_SP}week|(?P<month>next{_SP}month|(?:the{_SP})?end{_SP}of{_SP}(?:the|this){_SP}month|later{_SP}this{_SP}month))"
        r"(?![a-z-])",
        _h_en_range,
    ),
    (
        rf"(?<![a-z])(?:(?:on|at|over){_SP})?(?:the{_SP})?(?:(?P<rel>this|next|coming){_SP})?"
        r"week-?ends?(?![a-z])",
        _h_weekend,
    ),
    # ----- dates, numeric and English
    (
        r"(?<![0-9.:/¥$-])(?P<a>[0-9]{1,2})[./](?P<b>[0-9]{1,2})"
        r"(?:[./](?P<y>[0-9]{4}|[0-9]{2})(?![0-9]))?"
        rf"(?![0-9]|[./][0-9]|\s?(?:{_UNITS}))",
        _h_numeric_date,
    ),
    (
        rf"(?<![a-z])(?:on{_SP})?(?P<mon>{_EN_MONTHS})\.?\s{{0,3}}(?P<d>[0-9]{{1,2}})"
        rf"(?:st|nd|rd|th)?(?:,?\s{{0,3}}(?P<y>[0-9]{{4}}))?(?![0-9a-z]){_NOT_TIME_AFTER}",
        _h_en_month_day,
    ),
    (
        rf"(?<![0-9a-z])(?:on{_SP})?(?:the{_SP})?(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?"
        rf"\s{{0,3}}(?:of{_SP})?(?P<mon>{_EN_MONTHS})\.?(?![a-z])"
        r"(?:,?\s{0,3}(?P<y>[0-9]{4})(?![0-9]))?",
        _h_en_month_day,
    ),
    (
        rf"(?<![0-9a-z])(?:on{_SP})?(?:the{_SP})?(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)(?![a-z])"
        r"(?!\s{0,3}(?:floor|fl\b|storey|story|grade|year|time|place|birthday|anniversary|visit|pair|one))",
        _h_ordinal_day,  # "the 3rd" is a day; "the 3rd floor", "his 5th birthday" are not
    ),
    (
        rf"(?<![a-z])(?:(?P<after>(?:the{_SP})?day{_SP}after{_SP}(?:{_alt(EN_RELATIVE_DAY)}))"
        rf"|(?P<w>{_alt(EN_RELATIVE_DAY)}))(?![a-z])",
        _h_en_relative_day,
    ),
    (
        rf"(?<![a-z])(?:on{_SP})?(?:(?P<rel>this{_SP}coming|the{_SP}coming|this|next|coming)"
        rf"{_SP})?(?P<wd>{_EN_WEEKDAYS})(?![a-z])(?:{_SP}(?P<nw>next{_SP}week)(?![a-z]))?",
        _h_en_weekday,
    ),
    (
        rf"(?<![a-z])(?:in{_SP}(?P<n>{_EN_COUNT}){_SP}(?P<u>days?|weeks?)(?![a-z])"
        rf"|(?P<n2>{_EN_COUNT}){_SP}(?P<u2>days?|weeks?){_SP}"
        rf"(?:from{_SP}(?:now|today)|later)(?![a-z]))",
        _h_en_offset,
    ),
    # ----- periods
    (f"(?P<p>{_alt(CN_PERIOD)})(?!好)", _h_cn_period),
    (
        rf"(?<![a-z])(?<!good\s)(?:(?P<this>this){_SP}|in{_SP}the{_SP}|at{_SP})?"
        rf"(?P<p>{_alt(EN_PERIOD)})(?![a-z])",
        _h_en_period,
    ),
    # ----- clock times
    (
        rf"(?:(?P<pre>{_CN_PREFIXES})\s{{0,2}})?(?<![0-9])(?P<h>{_NUM})"
        rf"(?:\s?(?:-|~|到|至)\s?{_NUM}(?=\s?[点时]))?\s?"
        rf"(?:(?:点钟|点|时)(?:\s?(?P<min>半|一刻|三刻|(?:[0-9]{{1,2}}|{_CN_NUM})"
        r"(?![0-9号日月天个周星礼只位条次岁人张副间]))(?:\s?分)?)?|:(?P<cm>[0-9]{2})(?![0-9]))",  # "两点两只狗": 14:00
        _h_cn_time,
    ),
    (
        rf"(?<![0-9a-z])(?:(?:at|@)\s{{0,3}})?(?:(?:around|about){_SP})?"
        rf"(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})(?:[:.](?P<m>[0-9]{{2}}))?"
        rf"(?:\s{{0,2}}(?:-|~|to)\s{{0,2}}(?P<h2>[0-9]{{1,2}})(?:[:.][0-9]{{2}})?)?\s{{0,2}}"
        r"(?P<ap>a\.?m\.?|p\.?m\.?)(?![a-z])",
        _h_en_ampm,
    ),
    (
        rf"(?<![a-z])(?:at|@)\s{{0,3}}(?:(?:around|about){_SP})?"
        rf"(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})(?:[:.](?P<m>[0-9]{{2}}))?"
        r"(?:\s{0,2}o['’]?\s?clock)?(?![0-9a-z]|[:.][0-9])",
        _h_en_at,
    ),
    (
        rf"(?<![0-9a-z])(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})\s{{0,2}}o['’]?\s?clock(?![a-z])",
        _h_en_at,
    ),
    (  # "10 in the morning", "3 in the afternoon": the period word that follows resolves the hour
        rf"(?<![0-9a-z:.])(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})(?:[:.](?P<m>[0-9]{{2}}))?"
        rf"(?={_SP}in{_SP}the{_SP}(?:morning|afternoon|evening))",
        _h_en_at,
    ),
    (  # "two thirty", "at 4 fifteen": the minutes in words
        rf"(?<![0-9a-z])(?:(?:at|around|about){_SP})?(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS}){_SP}"
        r"(?P<mw>thirty|fifteen|forty[- ]?five|o[- ]?five)(?![a-z])",
        _h_en_word_minutes,
    ),
    (  # "around 2", "like 6", "about 4ish", "5ish": an approximate hour
        rf"(?<![0-9a-z])(?:(?:around|about|like|say|roughly|approximately|approx){_SP})"
        rf"(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})(?:[:.](?P<m>[0-9]{{2}}))?(?:\s?ish)?(?![0-9a-z%]|[:.][0-9])"
        rf"(?!{_SP}(?:{_UNITS_EN_AFTER}))",
        _h_en_at,
    ),
    (rf"(?<![0-9a-z])(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})ish(?![a-z])", _h_en_at),
    (rf"(?<![a-z])(?:at{_SP})?(?:12\s{{0,2}})?(?P<w>noon|midday|midnight)(?![a-z])", _h_en_noon),
    (rf"(?<![a-z])(?:around|at|about|over|during){_SP}(?P<w>lunch(?:{_SP}?time)?)(?![a-z])", _h_en_noon),
    (r"(?P<w>正午)", _h_en_noon),
    (r"(?<![0-9a-z])(?P<h>[0-9]{1,2})h(?P<m>[0-9]{2})?(?![0-9a-z])", _h_hour_h),
    (
        rf"(?<![a-z])(?:at{_SP})?(?:a{_SP})?(?P<q>half|quarter){_SP}(?P<dir>past|to){_SP}"
        rf"(?P<h>[0-9]{{1,2}}|{_EN_HOUR_WORDS})(?![0-9a-z])",
        _h_en_past_to,
    ),
)

_RULES: Final = tuple((re.compile(src, re.ASCII), fn) for src, fn in _RULES_SOURCE)
# One expression that finds the next position where any rule may start (group names removed).
_ANY: Final = re.compile(
    "|".join(f"(?:{re.sub(r'[(][?]P<[a-z0-9_]+>', '(?:', src)})" for src, _ in _RULES_SOURCE),
    re.ASCII,
)


# ---------------------------------------------------------------------------------------------
# Scanning
# ---------------------------------------------------------------------------------------------


def _normalise(text: str) -> tuple[str, list[int]]:
    """NFKC + lower case, with the original index of every normalised character."""
    if text.isascii():
        return text.lower(), list(range(len(text) + 1))
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        norm = unicodedata.normalize("NFKC", ch).lower() if not ch.isascii() else ch.lower()
        chars.append(norm)
        origin.extend([i] * len(norm))
    origin.append(len(text))
    return "".join(chars), origin


def _scan(norm: str) -> list[_Token]:
    """Leftmost-longest tokens of ``norm``; each rule is tried only where some rule matches."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(norm):
        found = _ANY.search(norm, pos)
        if found is None:
            break
        start = found.start()
        best: _Token | None = None
        for rx, handler in _RULES:
            m = rx.match(norm, start)
            if m is None or m.end() <= start or (best is not None and m.end() <= best.end):
                continue
            hit = handler(m, norm)
            if hit is not None:
                best = _Token(start, m.end(), hit)
        if best is None:
            pos = start + 1
        else:
            tokens.append(best)
            pos = best.end
    return tokens


def _in_range(
    tokens: list[_Token], used: list[_Token], day: dt.date | None, today: dt.date | None
) -> tuple[dt.date | None, dt.date | None, dt.date | None]:
    """A named range ("next week"): its first day when no day is said, else the day moved into it
    ("next week, Tuesday"); the range's token joins ``used``."""
    range_tok = next((t for t in tokens if t.hit.from_day is not None), None)
    if range_tok is None or range_tok.hit.from_day is None or today is None:
        return day, None, None
    from_date = range_tok.hit.from_day(today)
    until = range_tok.hit.until_day(today) if range_tok.hit.until_day is not None else None
    if day is not None and not any(t.hit.exact for t in used) and from_date is not None and day < from_date:
        day += dt.timedelta(days=7 * -(-(from_date - day).days // 7))
    used.append(range_tok)
    if day is None and from_date is not None and from_date == until:
        day = from_date  # "this weekend" said on a Sunday: today
    if day is not None:
        return day, None, None
    return day, from_date, until


def _analyse(
    text: str,
    today: dt.date | None,
    *,
    prefer_afternoon_for_small_hours: bool,
    day_first: bool,
) -> When:
    if not isinstance(text, str) or not text:
        return When()
    if isinstance(today, dt.datetime):
        today = today.date()
    norm, origin = _normalise(text)
    tokens = _scan(norm)

    used: list[_Token] = []
    day: dt.date | None = None
    if today is not None:
        # a calendar date said together with a weekday ("Sunday 29 Nov") is the more exact one
        tokens_by_day = sorted(tokens, key=lambda tok: not tok.hit.exact)
        for tok in tokens_by_day:
            fn = tok.hit.day_alt if day_first and tok.hit.day_alt else tok.hit.day
            if fn is None:
                continue
            try:
                day = fn(today)
            except (ValueError, OverflowError):
                day = None
            if day is not None:
                used.append(tok)
                break

    day, from_date, until_date = _in_range(tokens, used, day, today)

    time_tok = next((t for t in tokens if t.hit.clock is not None), None)
    period_tok: _Token | None = None
    if time_tok is not None and time_tok.hit.period is not None:
        period_tok = time_tok
    else:
        period_tok = next((t for t in tokens if t.hit.period is not None), None)
    period = period_tok.hit.period if period_tok else None

    clock: dt.time | None = None
    if time_tok is not None and time_tok.hit.clock is not None:
        resolved = _apply_period(time_tok.hit.clock, period)
        hour = resolved.hour
        if resolved.ambiguous and prefer_afternoon_for_small_hours and 1 <= hour <= 7:
            hour += 12
        clock = dt.time(hour, resolved.minute)
        used.append(time_tok)
    if period_tok is not None:
        used.append(period_tok)

    spans = sorted({(origin[t.start], origin[t.end - 1] + 1) for t in used})
    return When(
        date=day,
        time=clock,
        period=period,
        span=(spans[0][0], spans[-1][1]) if spans else None,
        spans=tuple(spans),
        past=any(t.hit.past for t in tokens),
        from_date=from_date,
        until_date=until_date,
    )


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def parse_when(
    text: str,
    today: dt.date,
    *,
    prefer_afternoon_for_small_hours: bool = False,
    day_first: bool = False,
) -> When:
    """Date, time and period mentioned in ``text``, relative to the shop's local ``today``.

    >>> w = parse_when("周六上午10点给豆豆洗澡", dt.date(2026, 11, 18))
    >>> (w.date, w.time, w.period, w.span)
    (datetime.date(2026, 11, 21), datetime.time(10, 0), 'morning', (0, 7))
    """
    return _analyse(
        text,
        today,
        prefer_afternoon_for_small_hours=prefer_afternoon_for_small_hours,
        day_first=day_first,
    )


def parse_date(text: str, today: dt.date, *, day_first: bool = False) -> dt.date | None:
    """The first valid day mentioned in ``text`` ("周六", "明早", "28/11", "in 3 days")."""
    return _analyse(text, today, prefer_afternoon_for_small_hours=False, day_first=day_first).date


def parse_time(text: str, prefer_afternoon_for_small_hours: bool = False) -> dt.time | None:
    """The first clock time in ``text`` ("下午3点半", "3pm", "at 3"); a lone period gives None."""
    return _analyse(
        text,
        None,
        prefer_afternoon_for_small_hours=prefer_afternoon_for_small_hours,
        day_first=False,
    ).time


def parse_period(text: str) -> Period | None:
    """The period of day the customer named ("下午", "tonight", "in the morning"), if any."""
    return _analyse(text, None, prefer_afternoon_for_small_hours=False, day_first=False).period


def period_of(t: dt.time) -> Period:
    """The period a clock time falls in: before 12 morning, before 18 afternoon, else evening."""
    if t.hour < 12:
        return "morning"
    return "afternoon" if t.hour < 18 else "evening"


def format_day_label(d: dt.date, today: dt.date, lang: Lang) -> str:
    """A short button label: "今天 11/21 周六", "11/24 周二", "Today Sat 21 Nov", "Tue 24 Nov"."""
    if isinstance(today, dt.datetime):
        today = today.date()
    if isinstance(d, dt.datetime):
        d = d.date()
    weekday = WEEKDAY_LABEL[lang][d.weekday()]
    label = f"{d.month}/{d.day} {weekday}" if lang == "zh" else f"{weekday} {d.day} {MONTH_LABEL_EN[d.month - 1]}"
    delta = (d - today).days
    if delta == 0:
        return f"{TODAY_LABEL[lang]} {label}"
    if delta == 1:
        return f"{TOMORROW_LABEL[lang]} {label}"
    return label
