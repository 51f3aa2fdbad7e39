"""The shipped domain lexicon: a customer's own words find the entry written in other words
(or another language), a shop extends it in its FAQ YAML, and the trade is chosen by itself."""

from __future__ import annotations

import pytest

from faq import Faq, FaqMatcher, load_faq, parse_faq
from faq.lexicon import choose_trades, shipped
from tests.faq.conftest import FAQ_DIR

# One English sample question per entry: every Chinese question below shares no word with it.
TERSE = """\
shop: tersepets
entries:
  - id: hours
    questions: [What are your opening hours?]
    answer: {zh: 见下, en: see below}
  - id: parking
    questions: [Is there a car park?]
    answer: {zh: 有, en: "yes"}
  - id: pet_taxi
    questions: [Do you have a pet taxi?]
    answer: {zh: 有, en: "yes"}
  - id: payment
    questions: [Which payment methods do you accept?]
    answer: {zh: 都行, en: all}
  - id: nails
    questions: [Can you clip claws?]
    answer: {zh: 可以, en: "yes"}
"""


def _faq(text: str) -> Faq:
    faq = parse_faq(text, "t.yaml")
    assert isinstance(faq, Faq), faq
    return faq


@pytest.mark.parametrize(("question", "expected"), [
    ("几点开门", "hours"), ("晚上几点关门", "hours"), ("附近能停车吗", "parking"),
    ("你们提供接送吗", "pet_taxi"), ("能上门接狗吗", "pet_taxi"), ("能刷卡吗", "payment"),
    ("可以用支付宝吗", "payment"), ("猫指甲能剪吗", "nails"),
])
def test_chinese_questions_reach_english_only_entries_through_the_lexicon(question: str, expected: str) -> None:
    result = FaqMatcher(_faq(TERSE)).match(question)
    assert result.candidates and result.candidates[0].id == expected, result
    assert result.decision in ("answer", "suggest")


def test_a_shop_adds_its_own_words_to_a_set_in_the_faq_yaml() -> None:
    question = "数字人民币可以付吗"
    plain = FaqMatcher(_faq(TERSE)).match(question)
    assert plain.decision == "none", plain
    extended = _faq(TERSE.replace("entries:", "lexicon:\n  payment: [数字人民币]\nentries:", 1))
    result = FaqMatcher(extended).match(question)
    assert result.decision != "none" and result.entry_id == "payment", result


def test_a_keyword_counts_for_its_whole_set() -> None:
    faq = _faq(TERSE.replace("    questions: [Which payment methods do you accept?]\n",
                             "    questions: [How do I settle the bill?]\n    keywords: [支付宝]\n"))
    result = FaqMatcher(faq).match("can i pay by credit card")
    assert result.candidates[0].id == "payment"


def test_the_trade_is_chosen_from_the_faq_wording() -> None:
    pawspa, clearsight = load_faq(FAQ_DIR / "pawspa.yaml"), load_faq(FAQ_DIR / "clearsight.yaml")
    assert isinstance(pawspa, Faq) and isinstance(clearsight, Faq)
    texts = lambda faq: [q for e in faq.entries for q in (*e.questions, *e.keywords)]  # noqa: E731
    assert choose_trades(texts(pawspa)) == ("pet",)
    assert choose_trades(texts(clearsight)) == ("optical",)
    assert choose_trades([], ["optical"]) == ("optical",)


def test_shipped_lexicon_files_cover_both_trades_in_both_languages() -> None:
    files = {f.trade: f for f in shipped()}
    assert set(files) == {"", "pet", "optical"}
    for needed, words in {"parking": ["停车", "car park"], "payment": ["刷卡", "alipay"],
                          "hours": ["营业", "opening hours"]}.items():
        assert all(w in files[""].sets[needed] for w in words)
    assert {"接送", "上门", "pick up", "pet taxi"} <= set(files["pet"].sets["pet_taxi"])
    assert {"散瞳", "dilation"} <= set(files["optical"].sets["dilation"])
    assert {"隐形", "contacts", "lenses"} <= set(files["optical"].sets["contacts"])
