"""Shops the matcher was not written for (tests/faq/data/shops, questions in
bench/faq_eval_unseen.yaml): the plain questions from issue 11 are answered, nothing out of
scope is answered with confidence, and the figures do not fall below what was measured."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from faq import Faq, FaqMatcher, load_faq

DATA = Path(__file__).resolve().parent / "data" / "shops"
EVAL = Path(__file__).resolve().parents[2] / "bench" / "faq_eval_unseen.yaml"


def _matcher(shop: str) -> FaqMatcher:
    faq = load_faq(DATA / f"{shop}.yaml")
    assert isinstance(faq, Faq)
    return FaqMatcher(faq)


HAPPYTAILS = _matcher("happytails")
LUMEN = _matcher("lumen")


@pytest.mark.parametrize(("question", "expected"), [
    ("what are ur hours", "opening_times"), ("where are you located", "where_we_are"),
    ("do you wash cats too", "cat_grooming"), ("can i park nearby", "car_parking"),
    ("你们提供接送吗", "pet_taxi"), ("能刷卡吗", "ways_to_pay"),
])
def test_the_plain_questions_from_the_issue_are_answered(question: str, expected: str) -> None:
    result = HAPPYTAILS.match(question)
    assert (result.decision, result.entry_id) == ("answer", expected), result


@pytest.mark.parametrize("question", ["can you fix my phone", "今天天气怎么样", "你们招美容师吗",
                                      "tell me a joke", "do you sell dog food", "帮我订个外卖"])
def test_out_of_scope_questions_are_not_answered(question: str) -> None:
    assert HAPPYTAILS.match(question).decision != "answer"


def test_held_out_figures_stay_where_they_were_measured() -> None:
    items = yaml.safe_load(EVAL.read_text(encoding="utf-8"))["questions"]
    matchers = {"happytails": HAPPYTAILS, "lumen": LUMEN}
    inside = [(q, matchers[q["shop"]].match(q["text"])) for q in items if q["expect"]]
    outside = [matchers[q["shop"]].match(q["text"]) for q in items if not q["expect"]]
    right = sum(r.decision == "answer" and r.entry_id == q["expect"] for q, r in inside) / len(inside)
    top3 = sum(any(c.id == q["expect"] for c in r.candidates) for q, r in inside) / len(inside)
    wrong = sum(r.decision == "answer" and r.entry_id != q["expect"] for q, r in inside) / len(inside)
    oos = sum(r.decision == "answer" for r in outside) / len(outside)
    # Measured with the shipped settings (bench/faq_accuracy.py); the issue's targets are
    # 80% / 95% / 2% / 3% (see the report: right and out-of-scope are not there yet).
    assert right >= 0.55 and top3 >= 0.95 and wrong <= 0.02 and oos <= 0.07, (right, top3, wrong, oos)


SET_3 = Path(__file__).resolve().parents[2] / "bench" / "faq_eval_unseen3.yaml"


def test_the_third_held_out_set_stays_where_it_was_measured() -> None:
    """bench/faq_eval_unseen3.yaml (purrlane: a cat salon that boards; kidsight: a children's
    optician), written 2026-12-02 before that session's changes: first run 52% answered right,
    top-3 92%, wrong 1.7%, out of scope 2.0%; after it 59% / 96% / 0.6% / 2.0%."""
    items = yaml.safe_load(SET_3.read_text(encoding="utf-8"))["questions"]
    matchers = {shop: _matcher(shop) for shop in ("purrlane", "kidsight")}
    inside = [(q, matchers[q["shop"]].match(q["text"])) for q in items if q["expect"]]
    outside = [matchers[q["shop"]].match(q["text"]) for q in items if not q["expect"]]
    right = sum(r.decision == "answer" and r.entry_id == q["expect"] for q, r in inside) / len(inside)
    top3 = sum(any(c.id == q["expect"] for c in r.candidates) for q, r in inside) / len(inside)
    wrong = sum(r.decision == "answer" and r.entry_id != q["expect"] for q, r in inside) / len(inside)
    oos = sum(r.decision == "answer" for r in outside) / len(outside)
    assert right >= 0.57 and top3 >= 0.95 and wrong <= 0.015 and oos <= 0.03, (right, top3, wrong, oos)


SET_5 = Path(__file__).resolve().parents[2] / "bench" / "faq_eval_unseen5.yaml"


def test_the_fifth_held_out_set_stays_where_it_was_measured() -> None:
    """bench/faq_eval_unseen5.yaml (hopnest: rabbits, guinea pigs, hamsters, chinchillas;
    201 questions, 43 out of scope), written 2026-12-02 session 6 before that session's matcher
    changes: first run 60.1% answered right, top-3 94.3%, wrong 0%, out of scope answered 7.0%
    (bench/faq_accuracy.py, all shops loaded); with the small-animal lexicon sets 63.3% /
    93.7% / 0% / 7.0%. Out of scope is above the issue's 3% (see bench/README.md)."""
    items = yaml.safe_load(SET_5.read_text(encoding="utf-8"))["questions"]
    matcher = _matcher("hopnest")
    inside = [(q, matcher.match(q["text"])) for q in items if q["expect"]]
    outside = [matcher.match(q["text"]) for q in items if not q["expect"]]
    right = sum(r.decision == "answer" and r.entry_id == q["expect"] for q, r in inside) / len(inside)
    top3 = sum(any(c.id == q["expect"] for c in r.candidates) for q, r in inside) / len(inside)
    wrong = sum(r.decision == "answer" and r.entry_id != q["expect"] for q, r in inside) / len(inside)
    oos = sum(r.decision == "answer" for r in outside) / len(outside)
    assert right >= 0.62 and top3 >= 0.93 and wrong <= 0.01 and oos <= 0.08, (right, top3, wrong, oos)
