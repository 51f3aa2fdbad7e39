"""Learning: a customer's wording added to an entry is answered right away, the admin's file
keeps its comments and order, a bad edit is never written; unanswered questions are grouped."""

from __future__ import annotations

import shutil
from pathlib import Path

from faq import FaqRegistry
from faq.learn import add_phrasing, group_unanswered
from tests.faq.conftest import FAQ_DIR, GOOD, write


def test_added_phrasing_is_answered_at_once_and_the_file_keeps_its_comments(tmp_path: Path) -> None:
    path = tmp_path / "pawspa.yaml"
    shutil.copy(FAQ_DIR / "pawspa.yaml", path)
    before = path.read_text(encoding="utf-8").splitlines()
    registry = FaqRegistry(tmp_path)
    matcher = registry.get("pawspa")
    assert matcher is not None
    question = "门口那条街能不能临时靠边放一下车"
    assert matcher.match(question).decision != "answer"

    result = registry.add_phrasing("pawspa", "parking", question)

    assert result.ok and result.added
    after = path.read_text(encoding="utf-8").splitlines()
    assert [line for line in after if line not in before] == [f"      - {question}"]
    assert [line for line in before if line not in after] == []  # comments, order, style kept
    served = registry.get("pawspa")
    assert served is not None and served is not matcher  # hot reloaded
    answered = served.match(question)
    assert (answered.decision, answered.entry_id) == ("answer", "parking")


def test_the_same_phrasing_twice_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "pawspa.yaml", GOOD)
    assert add_phrasing(path, "parking", "门口能停车吗").added
    text = path.read_text(encoding="utf-8")
    again = add_phrasing(path, "parking", "  门口能停车吗？ ")
    assert again.ok and not again.added
    assert path.read_text(encoding="utf-8") == text


def test_an_entry_without_questions_gets_a_questions_list(tmp_path: Path) -> None:
    only_keywords = GOOD.replace("""    questions:
      - 有停车位吗？
      - Is there parking?
""", "")
    path = write(tmp_path / "pawspa.yaml", only_keywords)
    result = add_phrasing(path, "parking", "车停哪儿")
    assert result.ok and result.faq is not None
    entry = result.faq.entry("parking")
    assert entry is not None and entry.questions == ["车停哪儿"]


def test_unknown_entry_and_bad_phrasing_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = write(tmp_path / "pawspa.yaml", GOOD)
    for entry_id, phrasing, words in [("nope", "几点开门", "no entry 'nope'"),
                                      ("hours", "", "empty"),
                                      ("hours", "x" * 300, "at most")]:
        result = add_phrasing(path, entry_id, phrasing)
        assert not result.ok and words in result.errors[0].message
    assert path.read_text(encoding="utf-8") == GOOD


def test_a_broken_file_is_not_edited_it_is_reported(tmp_path: Path) -> None:
    broken = GOOD.replace("route: front_desk", "route: nobody")
    path = write(tmp_path / "pawspa.yaml", broken)
    result = add_phrasing(path, "parking", "能停车吗")
    assert not result.ok and result.errors[0].line == 11
    assert path.read_text(encoding="utf-8") == broken


def test_unanswered_questions_are_grouped_with_counts_most_asked_first() -> None:
    groups = group_unanswered([
        "你们卖猫粮吗", "你们卖猫粮吗？", "卖猫粮吗", ("do you sell cat food", 2),
        "Do you sell cat food?", "可以开发票吗",
    ])
    assert [(g.text, g.count) for g in groups] == [
        ("do you sell cat food", 3), ("你们卖猫粮吗", 3), ("可以开发票吗", 1)]
    assert set(groups[1].variants) == {"你们卖猫粮吗？", "卖猫粮吗"}
