"""core/yamlsource.py, the one YAML loader: alias bombs, recursive aliases, deep nesting,
control characters and impossible dates are FILE:LINE: reasons, never a traceback or a hang."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError, load_config
from core.yamlsource import UPLOAD_MAX_ALIASES, YamlSourceError, load_yaml
from tests.conftest import CONFIG_PATH, ROOT
from tests.support.cli import run_chatbook

# 421 bytes that PyYAML expands to 10^9 strings (the "billion laughs")
BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


def _issues(text: str, **options: Any) -> list[str]:
    with pytest.raises(YamlSourceError) as caught:
        load_yaml("f.yaml", text=text, **options)
    return [str(i) for i in caught.value.issues]


def test_an_alias_bomb_is_refused_at_once() -> None:
    started = time.perf_counter()
    issues = _issues(BOMB)
    assert time.perf_counter() - started < 1.0
    assert len(issues) == 1 and issues[0].startswith("f.yaml:") and "alias" in issues[0]


def test_uploads_refuse_every_anchor_while_config_allows_a_few() -> None:
    text = "base: &base {x: 1}\ncopy: *base\n"
    assert load_yaml("f.yaml", text=text).data == {"base": {"x": 1}, "copy": {"x": 1}}
    [issue] = _issues(text, max_aliases=UPLOAD_MAX_ALIASES)
    assert issue.startswith("f.yaml:1:") and "anchors" in issue


def test_a_recursive_alias_and_deep_nesting_are_errors_not_crashes() -> None:
    [issue] = _issues("a: &a [1, *a]\n")
    assert issue.startswith("f.yaml:1:") and "recursive" in issue
    for depth in (100, 5000):
        [issue] = _issues("a: " + "[" * depth + "]" * depth + "\n")
        assert issue.startswith("f.yaml:1:") and "nest" in issue


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x9b"])
def test_control_characters_are_named_with_their_line(char: str) -> None:
    [issue] = _issues(f"shop: pawspa\nentries:\n  - answer: Hi{char}there\n")
    assert issue.startswith("f.yaml:3: ") and f"U+{ord(char):04X}" in issue


def test_escaped_control_characters_are_refused_too() -> None:
    [issue] = _issues('a: ok\nb: "nul \\0 here"\n')
    assert issue.startswith("f.yaml:2: ") and "U+0000" in issue


def test_an_impossible_date_is_a_line_not_a_traceback() -> None:
    [issue] = _issues("closed_dates:\n  - 2026-02-30\n")
    assert issue.startswith("f.yaml:2: ")


def test_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(YamlSourceError) as caught:
        load_yaml(path)
    assert str(caught.value.issues[0]).startswith(f"{path}:2: ")


def test_env_substitution_can_be_turned_off() -> None:
    assert load_yaml("f.yaml", text="a: ${NOPE}\n", substitute_env=False).data == {"a": "${NOPE}"}
    assert load_yaml("f.yaml", text="a: ${X}\n", environ={"X": "y"}).data == {"a": "y"}


def test_config_with_a_bomb_or_a_nul_is_a_clean_error(tmp_path: Path) -> None:
    demo = CONFIG_PATH.read_text(encoding="utf-8")
    for text, needle in (
        (demo + BOMB.replace("a:", "zz:", 1), "alias"),
        (demo.replace("kind: pet", "kind: p\x00et"), "U+0000"),
    ):
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path, environ={})
        assert needle in str(caught.value)
        done = run_chatbook("config", "check", "--config", str(path), cwd=ROOT)  # bot.cli.main, in this process
        assert done.returncode != 0 and "Traceback" not in done.stderr and f"{path}:" in done.stderr
