"""The fast reader (faq/fastyaml.py) gives exactly what the line-numbered loader gives, or
steps aside: the FAQ, its entry lines and every FILE:LINE error are the same either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from faq.fastyaml import fast_data
from faq.loader import MAX_DEPTH, _parse_faq, parse_faq
from faq.matcher import FaqMatcher
from faq.model import Faq

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("faq/*.yaml"), *ROOT.glob("tests/faq/data/shops/*.yaml")])

pytest.importorskip("yaml_rs")

GOOD = """shop: demo
entries:
  - id: hours
    questions: [几点开门, When do you open?]
    threshold: 80
    answer:
      zh: 每天 10:00 开门。
      en: We open at 10:00.
  - id: "parking"
    keywords: [停车]
    handoff: true
    answer: {zh: 有车位。, en: There is parking.}
"""


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_shipped_and_test_faq_reads_the_same_on_both_paths(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert fast_data(text, MAX_DEPTH) is not None  # these files do take the fast path
    fast, slow = _parse_faq(text, str(path), None, fast=True), _parse_faq(text, str(path), None)
    assert isinstance(fast, Faq) and isinstance(slow, Faq)
    assert fast == slow and fast.lines == slow.lines


def test_entry_and_answer_lines_match_the_slow_path() -> None:
    fast, slow = _parse_faq(GOOD, "demo.yaml", None, fast=True), _parse_faq(GOOD, "demo.yaml", None)
    assert isinstance(fast, Faq) and isinstance(slow, Faq)
    assert fast.lines == slow.lines
    assert fast.lines["hours"] == 3 and fast.lines["hours:answer.en"] == 8
    hours = fast.entry("hours")
    assert hours is not None and hours.threshold == 80.0


@pytest.mark.parametrize(
    "change",
    [
        ("handoff: true", "handoff: yes"),  # YAML 1.1 reads yes as true, YAML 1.2 as text
        ("threshold: 80", "threshold: 010"),  # 1.1: octal 8; 1.2: 10
        ("threshold: 80", "threshold: 8e1"),  # 1.1: text; 1.2: 80.0
        ("[几点开门, When", "[12:30, When"),  # 1.1: the integer 750
        ("[几点开门, When do you open?]", "[几点开门, 2026-01-02]"),  # 1.1: a date
        ("questions: [", "questions: &q ["),  # anchors are refused, with their line
        ("    keywords: [停车]", "    keywords: [停车]\n    keywords: [泊车]"),  # duplicate key
        ("en: We open at 10:00.", 'en: "We open\\a at 10:00."'),  # a control character as an escape
        ("answer: {zh", "answer: {zh: [}"),  # a syntax error
        ("- id: hours", "- {id: hours}\n  - id: x"),  # an entry not written as `- id:`
    ],
)
def test_anything_the_fast_reader_could_read_differently_gets_the_slow_answer(change: tuple[str, str]) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    assert fast_data(text, MAX_DEPTH) is None or _parse_faq(text, "demo.yaml", None, fast=True) == _parse_faq(
        text, "demo.yaml", None)
    result = parse_faq(text, "demo.yaml")
    slow = _parse_faq(text, "demo.yaml", None)
    if isinstance(slow, Faq):
        assert isinstance(result, Faq) and result == slow and result.lines == slow.lines
    else:
        assert result == slow  # the same FILE:LINE: reason list
        assert all(str(e).startswith("demo.yaml:") for e in result)


def test_a_broken_entry_in_a_large_file_is_reported_with_its_line() -> None:
    entries = "".join(
        f"  - id: e{i}\n    questions: [问题{i}]\n    answer:\n      zh: 答{i}\n      en: a{i}\n" for i in range(2000)
    )
    text = "shop: big\nentries:\n" + entries.replace("      en: a1500\n", "")
    result = parse_faq(text, "big.yaml")
    assert isinstance(result, list)
    line = 3 + 5 * 1500 + 2  # the `answer:` of e1500
    assert [str(e) for e in result] == [f"big.yaml:{line}: entries[1500] (id 'e1500'): missing `answer.en` "
                                        "(answers need both zh and en)"]


def test_a_rebuilt_matcher_that_reuses_the_old_analyses_matches_like_a_fresh_one() -> None:
    path = ROOT / "faq" / "pawspa.yaml"
    first = parse_faq(path.read_text(encoding="utf-8"), str(path))
    assert isinstance(first, Faq)
    edited_text = path.read_text(encoding="utf-8").replace("questions:\n", "questions:\n      - 狗狗洗香香多少钱\n", 1)
    edited = parse_faq(edited_text, str(path))
    assert isinstance(edited, Faq)
    old = FaqMatcher(first)
    reused, fresh = FaqMatcher(edited, previous=old), FaqMatcher(edited)
    for question in ["狗狗洗香香多少钱", "几点开门", "can i park nearby", "你们卖猫粮吗", "how much is a bath"]:
        assert reused.match(question) == fresh.match(question)
