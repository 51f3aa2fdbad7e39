"""Hostile or careless FAQ edits: each is reported as FILE:LINE: reason, quickly, by the loader,
`faq check` and the hot reload; the last good FAQ keeps answering and other shops are untouched."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from faq import Faq, FaqError, FaqRegistry, load_faq, parse_faq
from tests.faq.conftest import FAQ_DIR, GOOD, write

ROOT = FAQ_DIR.parent

ALIAS_BOMB = """\
shop: pawspa
bomb:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
entries:
  - id: hours
    questions: *i
    answer: {zh: 好, en: ok}
"""


def _errors(text: str) -> list[FaqError]:
    result = parse_faq(text, "shop.yaml")
    assert isinstance(result, list), "expected errors, the FAQ loaded"
    return result


def test_an_alias_bomb_is_refused_at_once_with_its_line() -> None:
    start = time.perf_counter()
    errors = _errors(ALIAS_BOMB)
    assert time.perf_counter() - start < 2.0
    alias = [e for e in errors if "anchors and aliases" in e.message]
    assert alias and alias[0].line == 3, [str(e) for e in errors]  # the first &a


def test_nul_and_control_characters_are_reported_with_line_and_column() -> None:
    text = GOOD.replace("门口有车位。", "门口有\x00车位。")
    errors = _errors(text)
    assert errors[0].line == 18 and "U+0000" in errors[0].message and "column" in errors[0].message
    bell = _errors(GOOD.replace("Is there parking?", "Is there\x07 parking?"))
    assert bell[0].line == 15 and "U+0007" in bell[0].message


def test_a_byte_order_mark_and_tabs_in_text_are_fine() -> None:
    assert isinstance(parse_faq("\ufeff" + GOOD, "shop.yaml"), Faq)


def test_merge_keys_and_deep_nesting_are_refused() -> None:
    merged = GOOD.replace("    route: front_desk\n", "    route: front_desk\n    <<: {handoff: true}\n")
    assert any("unknown key `<<`" in e.message and e.line == 12 for e in _errors(merged))
    deep = "shop: pawspa\nentries: " + "[" * 200 + "]" * 200 + "\n"
    assert any("nested more than 20 levels" in e.message and e.line == 2 for e in _errors(deep))


def test_an_answer_missing_a_language_names_the_entry_and_line() -> None:
    errors = _errors(GOOD.replace("      zh: 门口有车位。\n", ""))
    assert any(e.line == 17 and "answer.zh" in e.message and "parking" in e.message for e in errors)


def test_an_unknown_placeholder_is_reported_with_its_line() -> None:
    errors = _errors(GOOD.replace("Parking right outside.", "Parking at {adress}."))
    assert [(e.line, "unknown placeholder {adress}" in e.message) for e in errors] == [(19, True)]
    assert isinstance(parse_faq(GOOD.replace("Parking right outside.", "We're at {address}, "
                                             "call {phone}; a bath is {price:dog_bath_small}."),
                                "shop.yaml"), Faq)


def test_lexicon_and_trades_errors_have_lines() -> None:
    bad = GOOD.replace("entries:", "trades: [pets]\nlexicon:\n  parking: 泊位\n  bath: [1]\nentries:", 1)
    messages = {e.line: e.message for e in _errors(bad)}
    assert "unknown trade 'pets'" in messages[2] and "pet" in messages[2]
    assert "lexicon.bath" in messages[5]


def test_binary_garbage_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "pawspa.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage\x00" * 50)
    result = load_faq(path)
    assert isinstance(result, list) and result[0].file == str(path)


def test_hot_reload_keeps_the_last_good_faq_and_other_shops_keep_working(faq_dir: Path) -> None:
    write(faq_dir / "clearsight.yaml", GOOD.replace("shop: pawspa", "shop: clearsight"))
    registry = FaqRegistry(faq_dir)
    assert registry.get("pawspa") is not None and registry.get("clearsight") is not None
    for broken in (ALIAS_BOMB, GOOD.replace("门口有车位。", "门口\x00有车位。")):
        write(faq_dir / "pawspa.yaml", broken)
        errors = registry.reload_if_changed()
        assert errors and all(e.file == str(faq_dir / "pawspa.yaml") for e in errors)
        for shop in ("pawspa", "clearsight"):
            matcher = registry.get(shop)
            assert matcher is not None
            result = matcher.match("有停车位吗")
            assert (result.decision, result.entry_id) == ("answer", "parking")
        status = registry.status("pawspa")
        assert status is not None and not status.ok and status.entries == 2
        clear = registry.status("clearsight")
        assert clear is not None and clear.ok


def test_faq_check_reports_the_bomb_and_the_nul_with_file_and_line(tmp_path: Path) -> None:
    bomb = write(tmp_path / "pawspa.yaml", ALIAS_BOMB)
    nul = write(tmp_path / "clearsight.yaml", GOOD.replace("shop: pawspa", "shop: clearsight")
                .replace("门口有车位。", "门口\x00有车位。"))
    proc = subprocess.run([sys.executable, "-m", "faq.cli", "faq", "check", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 1
    assert f"{bomb}:3: anchors and aliases (&name, *name) are not allowed" in proc.stderr
    assert f"{nul}:18: control character U+0000" in proc.stderr


@pytest.mark.parametrize("name", ["pawspa.yaml", "clearsight.yaml"])
def test_entries_know_their_lines(name: str) -> None:
    faq = load_faq(FAQ_DIR / name)
    assert isinstance(faq, Faq)
    text = (FAQ_DIR / name).read_text(encoding="utf-8").splitlines()
    for entry in faq.entries:
        assert text[faq.lines[entry.id] - 1].strip() == f"- id: {entry.id}"
