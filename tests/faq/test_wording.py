"""How customers really type (issue 11): contractions, chat particles and phrases the shop's FAQ
never uses get the answer the plain wording gets, and a question about something the shop
does not do (a job, an EV charger) is not answered with the nearest entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from faq import Faq, FaqMatcher, load_faq, parse_faq

ROOT = Path(__file__).resolve().parents[2]

# A small optician FAQ: staff contact, parking and exam length (no jobs, no charging).
OPTICIAN = """\
shop: lensly
entries:
  - id: human
    questions: [我想跟店员说话, 转人工, Can I speak to a person?]
    keywords: [店员, 人工, staff, person]
    answer: {zh: 正在为您转接店员。, en: Connecting you with our staff.}
    handoff: true
  - id: parking
    questions: [停车场在哪里, 有停车位吗, Where can I park?]
    keywords: [停车场, 停车, parking]
    answer: {zh: 地下停车场两小时免费。, en: Two hours free in the underground car park.}
  - id: exam_time
    questions: [验光多久, How long does an eye exam take?]
    keywords: [验光多久]
    answer: {zh: 大约二十分钟。, en: About twenty minutes.}
"""


def _shipped(shop: str) -> FaqMatcher:
    faq = load_faq(ROOT / "faq" / f"{shop}.yaml")
    assert isinstance(faq, Faq), faq
    return FaqMatcher(faq)


@pytest.fixture(scope="module")
def pawspa() -> FaqMatcher:
    return _shipped("pawspa")


@pytest.fixture(scope="module")
def clearsight() -> FaqMatcher:
    return _shipped("clearsight")


@pytest.fixture(scope="module")
def optician() -> FaqMatcher:
    faq = parse_faq(OPTICIAN, "lensly.yaml")
    assert isinstance(faq, Faq), faq
    return FaqMatcher(faq)


@pytest.mark.parametrize("text", ["where's the shop", "Where’s the shop?", "wheres the shop", "where is the shop"])
def test_a_contraction_gets_the_answer_the_full_words_get(pawspa: FaqMatcher, text: str) -> None:
    result = pawspa.match(text)
    assert result.decision == "answer" and result.entry_id == "address", result


def test_what_s_and_what_is_are_the_same_question(pawspa: FaqMatcher) -> None:
    short, full = pawspa.match("what's the address"), pawspa.match("what is the address")
    assert short.decision == full.decision == "answer"
    assert short.entry_id == full.entry_id == "address"
    assert short.score == full.score


@pytest.mark.parametrize("particle", ["啊", "呀", "呢"])
def test_a_chat_particle_does_not_change_the_answer(clearsight: FaqMatcher, particle: str) -> None:
    plain = clearsight.match("验光要多久")
    chatty = clearsight.match(f"验光要多久{particle}")
    assert chatty.decision == plain.decision == "answer"
    assert chatty.entry_id == plain.entry_id == "exam_duration"


def test_a_shipped_phrase_the_faq_never_uses_still_finds_its_parts(clearsight: FaqMatcher) -> None:
    # "验光要多久" is one paraphrase set of the shipped lexicon; this FAQ words it 验光 + 多久
    result = clearsight.match("验光要多久")
    assert result.decision == "answer" and result.entry_id == "exam_duration", result


@pytest.mark.parametrize("text", ["你们招店员吗", "停车场的充电桩在哪里"])
def test_a_question_about_something_the_shop_does_not_do_is_not_answered(optician: FaqMatcher, text: str) -> None:
    result = optician.match(text)
    assert result.decision != "answer", result


def test_the_shop_s_own_questions_near_them_are_still_answered(optician: FaqMatcher) -> None:
    assert optician.match("我想找店员").entry_id == "human"
    parked = optician.match("停车场在哪")
    assert parked.decision == "answer" and parked.entry_id == "parking", parked
