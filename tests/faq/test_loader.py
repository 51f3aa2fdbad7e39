"""Loading and validation: shipped FAQs validate; every broken edit names file, line, reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faq import Faq, FaqError, load_faq, parse_faq
from tests.faq.conftest import FAQ_DIR, GOOD, write


@pytest.mark.parametrize("name", ["pawspa.yaml", "clearsight.yaml"])
def test_shipped_faqs_validate_with_both_languages(name: str) -> None:
    faq = load_faq(FAQ_DIR / name)
    assert isinstance(faq, Faq), "\n".join(map(str, faq))
    assert faq.shop == name.removesuffix(".yaml")
    assert len(faq.entries) >= 28
    for entry in faq.entries:
        assert entry.answer.zh.strip() and entry.answer.en.strip()


def test_shipped_faqs_hand_medical_and_injury_questions_to_staff() -> None:
    pawspa, clearsight = load_faq(FAQ_DIR / "pawspa.yaml"), load_faq(FAQ_DIR / "clearsight.yaml")
    assert isinstance(pawspa, Faq) and isinstance(clearsight, Faq)
    injured = pawspa.entry("pet_injured")
    emergency = clearsight.entry("eye_emergency")
    assert injured is not None and injured.handoff and injured.route == "front_desk"
    assert emergency is not None and emergency.handoff and emergency.route == "optometrist"


def _errors(text: str, **kwargs: Any) -> list[FaqError]:
    result = parse_faq(text, "shop.yaml", **kwargs)
    assert isinstance(result, list), "expected errors, the FAQ loaded"
    return result


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


BROKEN = [
    # (description, edit, needle whose line is reported, occurrence, words in the reason)
    ("bad YAML", lambda t: t.replace("keywords: [停车, parking]", "keywords: [停车, parking"),
     "answer:", 2, ["YAML syntax"]),
    ("duplicate id", lambda t: t.replace("id: parking", "id: hours"), "id: hours", 2,
     ["duplicate id 'hours'", "first at line 3"]),
    ("missing en", lambda t: t.replace("      en: Parking right outside.\n", ""), "answer:", 2,
     ["answer.en", "missing"]),
    ("empty answer", lambda t: t.replace("zh: 门口有车位。", "zh: ''"), "zh: ''", 1,
     ["answer.zh", "empty"]),
    ("unknown route", lambda t: t.replace("route: front_desk", "route: grommer"),
     "route: grommer", 1, ["unknown route 'grommer'", "groomer"]),
    ("typo key", lambda t: t.replace("    answer:\n      zh: 门口", "    anwser:\n      zh: 门口"),
     "anwser:", 1, ["unknown key `anwser`", "did you mean 'answer'"]),
    ("wrong type", lambda t: t.replace("route: front_desk", "route: front_desk\n    handoff: maybe"),
     "handoff: maybe", 1, ["handoff", "boolean"]),
    ("no questions nor keywords",
     lambda t: t.replace("""    questions:
      - 有停车位吗？
      - Is there parking?
    keywords: [停车, parking]
""", ""), "id: parking", 1, ["questions", "keywords"]),
    ("missing shop", lambda t: t.replace("shop: pawspa\n", ""), "entries:", 1, ["shop"]),
]


@pytest.mark.parametrize(("what", "edit", "needle", "occurrence", "words"), BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_broken_edit_reports_file_line_and_reason(
    what: str, edit: Callable[[str], str], needle: str, occurrence: int, words: list[str]
) -> None:
    text = edit(GOOD)
    assert text != GOOD, what
    errors = _errors(text)
    expected_line = _line_of(text, needle, occurrence)
    matching = [e for e in errors if all(w in e.message for w in words)]
    assert matching, f"no error mentioning {words}: {[str(e) for e in errors]}"
    assert matching[0].file == "shop.yaml"
    assert matching[0].line == expected_line, str(matching[0])
    assert str(matching[0]).startswith(f"shop.yaml:{expected_line}: ")


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = (GOOD.replace("route: front_desk", "route: nobody")
            .replace("id: parking", "id: hours")
            .replace("      en: Parking right outside.\n", ""))
    messages = " | ".join(e.message for e in _errors(text))
    assert "unknown route 'nobody'" in messages
    assert "duplicate id 'hours'" in messages
    assert "answer.en" in messages


def test_known_routes_come_from_the_caller() -> None:
    text = GOOD.replace("route: front_desk", "route: reception")
    assert isinstance(parse_faq(text, "x.yaml", known_routes={"reception"}), Faq)
    assert _errors(text)  # not in the default set


def test_duplicate_yaml_key_is_an_error_not_a_silent_override() -> None:
    text = GOOD.replace("      zh: 门口有车位。\n", "      zh: 门口有车位。\n      zh: 第二个\n")
    errors = _errors(text)
    assert any("duplicate key 'zh'" in e.message and e.line == _line_of(text, "zh: 第二个")
               for e in errors)


def test_unreadable_and_empty_files_are_reported(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.yaml", "# nothing yet\n")
    result = load_faq(empty)
    assert isinstance(result, list) and result[0].file == str(empty)
    missing = load_faq(tmp_path / "missing.yaml")
    assert isinstance(missing, list) and "cannot read" in missing[0].message


def test_a_file_that_is_not_utf8_names_the_line_as_for_config_yaml(tmp_path: Path) -> None:
    # Both loaders read files through core/yamlsource.py: the same message, at the bad byte's line.
    lines = GOOD.encode("utf-8").split(b"\n")
    lines[4] = lines[4] + b" \xff"
    path = tmp_path / "pawspa.yaml"
    path.write_bytes(b"\n".join(lines))
    errors = load_faq(path)
    assert isinstance(errors, list)
    [error] = errors
    assert (error.file, error.line) == (str(path), 5) and "not UTF-8 text" in error.message


def test_windows_line_endings_give_the_same_faq_and_lines(tmp_path: Path) -> None:
    unix = load_faq(write(tmp_path / "unix.yaml", GOOD))
    windows = tmp_path / "windows.yaml"
    windows.write_bytes(GOOD.replace("\n", "\r\n").encode("utf-8"))
    dos = load_faq(windows)
    assert isinstance(unix, Faq) and isinstance(dos, Faq)
    assert (dos.entries, dos.lines) == (unix.entries, unix.lines)
