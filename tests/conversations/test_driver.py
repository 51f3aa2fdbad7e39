"""The corpus driver itself: it rejects malformed files naming the file and the conversation, and a
conversation whose bot does not do what the script expects fails with its transcript."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conversations.driver import CorpusError, Script, feasibility, load_corpus, load_file, run_conversation

GREETING = """
- id: driver-greeting
  class: happy_path
  shop: pawspa
  lang: zh
  given:
    pets: [{name: 豆豆, species: dog, size: small}]
    bookings: [{service: dog_bath_small, start: "2026-11-28 15:00", pet: 豆豆}]
  turns:
    - say: 你好
      expect: {ASKS}
  outcome:
    bookings: [{service: dog_bath_small, start: "START", status: confirmed, price: 88, pet: 豆豆}]
"""


def script_of(tmp_path: Path, text: str, name: str = "sample.yaml") -> Script:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    [script] = load_file(path)
    return script


def greeting(tmp_path: Path, asks: str = "asks: idle", start: str = "2026-11-28 15:00") -> Script:
    return script_of(tmp_path, GREETING.replace("ASKS", asks).replace("START", start))


async def test_matching_expectations_pass(tmp_path: Path) -> None:
    result = await run_conversation(greeting(tmp_path), tmp_path)
    assert result.passed, result.report()


async def test_a_wrong_asks_fails_with_the_transcript(tmp_path: Path) -> None:
    result = await run_conversation(greeting(tmp_path, asks="asks: confirm"), tmp_path)
    assert not result.passed
    assert any("asking confirm" in f for f in result.failures), result.failures
    report = result.report()
    assert "driver-greeting" in report and "customer say: 你好" in report and "state=" in report


async def test_a_wrong_outcome_booking_fails(tmp_path: Path) -> None:
    result = await run_conversation(greeting(tmp_path, start="2026-11-28 16:00"), tmp_path)
    assert not result.passed
    assert any("start 2026-11-28 15:00 != 2026-11-28 16:00" in f for f in result.failures), result.failures


async def test_a_seed_the_shop_refuses_is_an_error_naming_the_conversation(tmp_path: Path) -> None:
    text = GREETING.replace("ASKS", "asks: idle").replace("2026-11-28 15:00", "2026-11-24 15:00")  # a Tuesday
    result = await run_conversation(script_of(tmp_path, text.replace("START", "2026-11-24 15:00")), tmp_path)
    assert result.error is not None and "driver-greeting" in result.error and "closed" in result.error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  lang: zh\n", "  lang: zh\n  langauge: en\n"), "unknown key(s) ['langauge']"),
        (("class: happy_path", "class: happy"), "'happy' is not one of"),
        (("{asks: idle}", "{asks: confirming}"), "turns[1].expect.asks: 'confirming' is not one of"),
        (("{asks: idle}", "{asks: idle, says: hi}"), "turns[1].expect: unknown key(s) ['says']"),
        (
            ('service: dog_bath_small, start: "START", status', 'service: dog_bath, start: "START", status'),
            "outcome.bookings[1].service: 'dog_bath' is not one of",
        ),
        (("- say: 你好", "- press: btn.confirmm"), "turns[1].press: 'btn.confirmm' is not a locale key"),
        (('2026-11-28 15:00", pet', '2026-11-28 3pm", pet'), "given.bookings[1].start"),
    ],
)
def test_malformed_files_name_the_file_and_the_id(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = GREETING.replace("ASKS", "asks: idle").replace("START", "2026-11-28 15:00")
    old, new = change
    old = old.replace("START", "2026-11-28 15:00")
    assert old in text, old
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_file(path)
    assert str(caught.value).startswith("broken.yaml: driver-greeting: "), caught.value
    assert message in str(caught.value)


def test_duplicate_ids_across_files_are_reported(tmp_path: Path) -> None:
    text = GREETING.replace("ASKS", "asks: idle").replace("START", "2026-11-28 15:00")
    (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(text, encoding="utf-8")
    scripts, errors = load_corpus(tmp_path)
    assert len(scripts) == 1
    assert [str(e) for e in errors] == ["b.yaml: driver-greeting: duplicate id (also in a.yaml)"]


async def test_pressing_a_button_the_bot_did_not_offer_fails(tmp_path: Path) -> None:
    text = GREETING.replace("- say: 你好\n      expect: {ASKS}", "- press: btn.confirm_change").replace(
        "START", "2026-11-28 15:00"
    )
    result = await run_conversation(script_of(tmp_path, text), tmp_path)
    assert not result.passed
    assert any("no button btn.confirm_change" in f for f in result.failures), result.failures


async def test_feasibility_reports_an_expected_booking_on_a_closed_day(tmp_path: Path) -> None:
    text = GREETING.replace("ASKS", "asks: idle").replace("START", "2026-11-28 15:00")
    head, tail = text.rsplit("pet: 豆豆}]", 1)  # the outcome's list: add a Tuesday booking
    text = head + 'pet: 豆豆}, {service: nail_trim, start: "2026-11-24 11:00"}]' + tail
    problems = await feasibility(script_of(tmp_path, text), tmp_path)
    assert len(problems) == 1 and "2026-11-24 11:00" in problems[0] and "closed" in problems[0], problems


def test_a_time_typed_unquoted_stays_the_text_the_customer_typed(tmp_path: Path) -> None:
    text = GREETING.replace("- say: 你好", "- say: 3:30").replace("ASKS", "asks: idle")
    script = script_of(tmp_path, text.replace("START", "2026-11-28 15:00"))
    assert script.steps[0].value == "3:30"  # YAML 1.1 would read 210 (base 60)
