"""Recurring-visit wishes in a customer's words: ``recurrence_in(text) -> Recurrence | None``.

Chinese: "每6周一次", "每两周", "每隔两周", "每隔一周" (every other week), "两周一次", "每个月一次",
"每月一次", "一个月一次", "每三个月", "每10天一次"; optionally "共6次" / "一共6次" / "6次" for the
number of visits. English: "every 6 weeks", "every other week", "every second week", "every
month", "monthly", "weekly", "fortnightly", "biweekly", "once a month", "every 10 days";
optionally "6 times", "for 6 visits".

Not a wish: a statement of habit or availability that names a weekday ("每周六有空", "每周一上班",
"every Saturday I'm busy"), a bare "每周" / "每月" without a frequency word ("每周都很忙", "我每月
都来" are about the customer, not a booking), and a negated one ("不用每周", "not every week").
The grammar is small and explicit; anything it does not recognise is None (the booking goes on
as a single visit), so a false "yes" never books a series nobody asked for.
"""

from __future__ import annotations

import re

from core.series import LIMITS, MAX_COUNT, Recurrence, Unit

_ZH_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ZH_NUM = r"[0-9０-９]{1,3}|[一二两俩三四五六七八九十]{1,3}"
_ZH_UNIT = r"(?P<unit>周|星期|个?礼拜|个?月|天)"
# 每(隔)N周(一次) / N周一次 / 每周一次 / 每个月一次 ...
_ZH_EVERY = re.compile(rf"每(?P<gap>隔)?(?P<n>{_ZH_NUM})?{_ZH_UNIT}(?P<once>[一1]?(?:次|回|趟))?")
_ZH_PER = re.compile(rf"(?<![每隔])(?P<n>{_ZH_NUM}){_ZH_UNIT}(?P<once>[一1](?:次|回|趟))")
_ZH_COUNT = re.compile(rf"(?:一?共|总共|连续|约)?(?P<n>{_ZH_NUM})次(?!一)")
_ZH_WEEKDAY_AFTER = re.compile(r"^[一二三四五六日天末]")
_ZH_NEGATION = re.compile(r"(?:不用|不要|不必|不需要|别|没有|不是)(?:再)?(?:每|定期)")

_EN_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "second": 2, "other": 2, "third": 3, "fourth": 4,
}  # fmt: skip
_EN_NUM = r"\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_EN_EVERY = re.compile(
    rf"\bevery\s+(?:(?P<n>{_EN_NUM}|other|second|third|fourth)\s+)?(?P<unit>days?|weeks?|months?|fortnight)\b"
)
_EN_ADVERB = re.compile(r"\b(?P<word>weekly|monthly|fortnightly|biweekly|bi-weekly)\b")
_EN_ONCE = re.compile(
    rf"\b(?:once|one time)\s+(?:a|an|per|every)\s+(?:(?P<n>{_EN_NUM})\s+)?(?P<unit>days?|weeks?|months?|fortnight)\b"
)
_EN_COUNT = re.compile(rf"\b(?:for\s+)?(?P<n>{_EN_NUM})\s+(?:times|visits|sessions|appointments)\b")
_EN_NEGATION = re.compile(r"\b(?:not|no need|don't|do not|never)\s+(?:\w+\s+){0,2}(?:every|weekly|monthly)\b")


def _zh_number(text: str) -> int | None:
    text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        high = _ZH_DIGITS.get(tens, 0 if tens else 1) if tens else 1
        low = _ZH_DIGITS.get(ones, 0) if ones else 0
        if (tens and tens not in _ZH_DIGITS) or (ones and ones not in _ZH_DIGITS):
            return None
        return high * 10 + low
    if len(text) == 1 and text in _ZH_DIGITS:
        return _ZH_DIGITS[text]
    return None


def _en_number(text: str) -> int | None:
    return int(text) if text.isdigit() else _EN_NUMBERS.get(text)


def _zh_unit(word: str) -> Unit:
    if word.endswith("月"):
        return "month"
    if word == "天":
        return "day"
    return "week"


def _build(every: int | None, unit: Unit, count: int | None) -> Recurrence | None:
    if every is None:
        return None
    low, high = LIMITS[unit]
    if not low <= every <= high:
        return None
    if count is not None and not 2 <= count <= MAX_COUNT:
        count = None
    return Recurrence(every, unit, count)


def _zh(text: str) -> Recurrence | None:
    if _ZH_NEGATION.search(text):
        return None
    for match in _ZH_EVERY.finditer(text):
        unit = _zh_unit(match.group("unit"))
        rest = text[match.end() :]
        n_text, gap, once = match.group("n"), match.group("gap"), match.group("once")
        if unit == "week" and not n_text and not once and _ZH_WEEKDAY_AFTER.match(rest):
            continue  # 每周六 / 每星期天: a weekday, not a rhythm
        if not n_text and not gap and not once:
            continue  # a bare 每周 / 每月: a habit ("每周都很忙"), not a wish
        n = _zh_number(n_text) if n_text else 1
        if n is None:
            continue
        if gap and n == 1:
            n = 2  # 每隔一周: every other week
        if unit == "day" and not n_text:
            continue  # 每天: not a visit rhythm
        return _build(n, unit, _zh_count(text, match.end()))
    for match in _ZH_PER.finditer(text):
        n = _zh_number(match.group("n"))
        return _build(n, _zh_unit(match.group("unit")), _zh_count(text, match.end()))
    return None


def _zh_count(text: str, after: int) -> int | None:
    match = _ZH_COUNT.search(text, after)
    if match is None:
        return None
    return _zh_number(match.group("n"))


def _en_unit(word: str) -> tuple[Unit, int]:
    if word.startswith("fortnight"):
        return "week", 2
    if word.startswith("month"):
        return "month", 1
    if word.startswith("day"):
        return "day", 1
    return "week", 1


def _en(text: str) -> Recurrence | None:
    lowered = text.lower()
    if _EN_NEGATION.search(lowered):
        return None
    count_match = _EN_COUNT.search(lowered)
    count = _en_number(count_match.group("n")) if count_match else None
    for pattern in (_EN_EVERY, _EN_ONCE):
        match = pattern.search(lowered)
        if match is None:
            continue
        unit, factor = _en_unit(match.group("unit"))
        n = _en_number(match.group("n")) if match.group("n") else 1
        if n is None or (unit == "day" and not match.group("n")):
            continue  # "every day": not a visit rhythm
        return _build(n * factor, unit, count)
    adverb = _EN_ADVERB.search(lowered)
    if adverb is not None:
        word = adverb.group("word")
        unit = "month" if word == "monthly" else "week"
        return _build(1 if word in ("weekly", "monthly") else 2, unit, count)
    return None


def recurrence_in(text: str) -> Recurrence | None:
    """The repeat the customer asks for in ``text`` (zh or en), or None when there is none."""
    if not text or len(text) > 500:
        return None
    return _zh(text) or _en(text)
