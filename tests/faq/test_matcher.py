"""Matching real customer questions: right answers, and no confident answer off-topic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faq import Faq, FaqMatcher, load_faq, normalize, parse_faq
from tests.faq.conftest import FAQ_DIR, GOOD


def _matcher(shop: str) -> FaqMatcher:
    faq = load_faq(FAQ_DIR / f"{shop}.yaml")
    assert isinstance(faq, Faq)
    return FaqMatcher(faq)


PAWSPA = _matcher("pawspa")
CLEARSIGHT = _matcher("clearsight")


@pytest.mark.parametrize(
    ("matcher", "question", "expected"),
    [
        (PAWSPA, "你们周末几点开门呀", "hours"),
        (PAWSPA, "给我家比熊洗个澡要多少钱", "dog_bath_price"),
        (PAWSPA, "猫咪没打疫苗可以洗澡吗", "unvaccinated_cat"),
        (PAWSPA, "我家狗狗咬人，能洗吗", "aggressive_dog"),
        (PAWSPA, "我家狗洗完澡回来腿在流血", "pet_injured"),
        (PAWSPA, "do you sedate cats", "sedation"),
        (PAWSPA, "can I pay with Alipay?", "payment"),
        (PAWSPA, "how much is a nail trim for my cat", "nail_trim"),
        (CLEARSIGHT, "验光前隐形眼镜要摘多久", "contacts_before_exam"),
        (CLEARSIGHT, "散瞳以后能自己开车吗", "dilation"),
        (CLEARSIGHT, "眼睛被烫伤了看不见", "eye_emergency"),
        (CLEARSIGHT, "how many days to make my glasses", "glasses_turnaround"),
        (CLEARSIGHT, "do you accept wechat pay", "payment"),
    ],
)
def test_real_questions_get_the_right_answer(
    matcher: FaqMatcher, question: str, expected: str
) -> None:
    result = matcher.match(question)
    assert (result.decision, result.entry_id) == ("answer", expected), result
    assert result.entry is not None and result.entry.id == expected
    assert result.candidates[0].id == expected


OFF_TOPIC = ["can you fix my car", "今天股市怎么样", "你们卖手机吗", "what's the weather",
             "你们卖猫粮吗", "tell me a joke", "🐶🐶🐶", "???", ""]


@pytest.mark.parametrize("matcher", [PAWSPA, CLEARSIGHT], ids=["pawspa", "clearsight"])
@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_never_get_a_confident_answer(
    matcher: FaqMatcher, question: str
) -> None:
    result = matcher.match(question)
    assert result.decision in ("none", "suggest"), result
    assert not result.confident


def test_emergency_answer_carries_the_handoff() -> None:
    result = CLEARSIGHT.match("化学品溅到眼睛里了")
    assert result.confident and result.entry is not None
    assert result.entry.handoff and result.entry.route == "optometrist"


def test_full_width_punctuation_and_emoji_do_not_change_the_match() -> None:
    plain = PAWSPA.match("营业时间是几点")
    noisy = PAWSPA.match("营业时间是几点？？！！🐶🐱✨  ")
    assert (noisy.entry_id, noisy.score) == (plain.entry_id, plain.score)
    assert normalize("ＯＰＥＮ　Ｈｏｕｒｓ？！～ 🐶") == "open hours"


def test_candidates_are_at_most_three_best_first_and_scores_bounded() -> None:
    result = PAWSPA.match("狗狗洗澡")
    assert 1 <= len(result.candidates) <= 3
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 100 for s in scores)


def test_vague_question_suggests_instead_of_guessing() -> None:
    result = PAWSPA.match("猫")
    assert result.decision != "answer"


def test_per_entry_threshold_stops_a_direct_answer() -> None:
    strict = GOOD.replace("    route: front_desk\n", "    route: front_desk\n    threshold: 100\n")
    faq = parse_faq(strict, "t.yaml")
    assert isinstance(faq, Faq)
    question = "你们晚上营业时间到几点"
    loose_faq = parse_faq(GOOD, "t.yaml")
    assert isinstance(loose_faq, Faq)
    assert FaqMatcher(loose_faq).match(question).decision == "answer"
    assert FaqMatcher(faq).match(question).decision == "suggest"


def test_synonyms_in_the_yaml_reach_the_matcher() -> None:
    with_synonyms = GOOD.replace("entries:", "synonyms:\n  停车: [停靠]\nentries:", 1)
    faq = parse_faq(with_synonyms, "t.yaml")
    assert isinstance(faq, Faq)
    assert FaqMatcher(faq).match("可以停靠吗").decision == "answer"
    assert FaqMatcher(faq).match("可以停靠吗").entry_id == "parking"
    plain = parse_faq(GOOD, "t.yaml")
    assert isinstance(plain, Faq)
    assert FaqMatcher(plain).match("可以停靠吗").decision != "answer"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_bounded_result(text: str) -> None:
    result = PAWSPA.match(text)
    assert 0 <= result.score <= 100
    assert result.decision in ("answer", "suggest", "none")
    assert (result.entry_id is None) == (result.decision == "none")
