"""config.yaml: every mistake an admin can make is reported once, with key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from tests.conftest import CONFIG_PATH
from tests.support.cli import run_chatbook

DEMO = CONFIG_PATH.read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


def _edit(old: str, new: str, count: int = 1) -> str:
    assert old in DEMO, old
    return DEMO.replace(old, new, count)


def _errors(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    return [str(issue) for issue in caught.value.issues]


def test_demo_config_is_valid() -> None:
    config = load_config(CONFIG_PATH, environ={})
    assert set(config.shops) == {"pawspa", "clearsight"}
    pawspa, clearsight = config.shops["pawspa"], config.shops["clearsight"]
    assert "tue" not in pawspa.opening_hours  # closed Tuesdays
    assert pawspa.booking.buffer_min == 10 and pawspa.booking.lead_time_min == 120
    assert pawspa.booking.horizon_days == 30
    assert pawspa.services["grooming"].confirmation == "staff"
    assert {s.duration_min for s in pawspa.services.values() if s.category == "dog_bath"} == {60, 90, 120}
    assert clearsight.resources["exam_room"].capacity == 1
    assert not clearsight.services["glasses_pickup"].staff_required
    assert str(clearsight.staff["dr_chen"].shifts["wed"][0]) == "13:00-19:00"


@pytest.mark.parametrize(
    ("old", "new", "marker", "reason"),
    [
        ("        duration_min: 60\n", "        duraton_min: 60\n", "duraton_min", "unknown key"),
        ('      mon: ["10:00-20:00"]', '      mon: ["10:00-25:00"]', "10:00-25:00", "impossible time"),
        ('      mon: ["10:00-20:00"]', '      mon: ["20:00-10:00"]', "20:00-10:00", "ends before it starts"),
        ("    timezone: Asia/Shanghai", "    timezone: Asia/Shangai", "Asia/Shangai", "unknown time zone"),
        ("        duration_min: 60\n", "        duration_min: 62\n", "duration_min: 62", "multiple of 5"),
        ("        duration_min: 60\n", "        duration_min: long\n", "duration_min: long", "valid integer"),
        (
            "        services: [adult_exam, child_exam, contact_lens_fitting]",
            "        services: [adult_exam, child_exam, contact_lens_fittin]",
            "contact_lens_fittin]",
            "unknown service 'contact_lens_fittin'",
        ),
        ("        resources: [counter]", "        resources: [countr]", "[countr]", "unknown resource 'countr'"),
        ("        capacity: 1  ", "        capacity: 0  ", "capacity: 0", "greater than or equal to 1"),
        ("        confirmation: staff", "        confirmation: manual", "confirmation: manual", "'auto' or 'staff'"),
        ("      flow_idle_min: 30 ", "      flow_idle_min: 0 ", "flow_idle_min: 0", "greater than or equal to 1"),
    ],
)
def test_each_mistake_names_key_and_line(tmp_path: Path, old: str, new: str, marker: str, reason: str) -> None:
    text = _edit(old, new)
    errors = _errors(tmp_path, text)
    assert len(errors) == 1, errors
    expected_line = _line_of(text, marker)
    assert f"config.yaml:{expected_line}: " in errors[0], errors[0]
    assert reason in errors[0]
    assert "shops." in errors[0]  # the key path is named


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    text = _edit("    kind: pet\n", "    kind: [pet\n")
    errors = _errors(tmp_path, text)
    assert len(errors) == 1
    assert "YAML syntax error" in errors[0]
    assert errors[0].startswith(str(tmp_path / "config.yaml") + ":")


def test_duplicate_key_is_reported(tmp_path: Path) -> None:
    text = _edit("    kind: pet\n", "    kind: pet\n    kind: optician\n")
    errors = _errors(tmp_path, text)
    assert errors == [f"{tmp_path / 'config.yaml'}:{_line_of(text, 'kind: optician')}: duplicate key 'kind'"]


def test_env_substitution_and_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(DEMO, encoding="utf-8")
    config = load_config(path, environ={"CHATBOOK_DATABASE_URL": "postgresql+asyncpg://u@h/db"})
    assert config.database.url == "postgresql+asyncpg://u@h/db"
    assert load_config(path, environ={}).database.url == "sqlite+aiosqlite:///chatbook.db"

    text = _edit("  port: 8080\n", "  port: 8080\n  public_url: ${PUBLIC_URL_FOR_TEST}\n").replace(
        "  public_url: ${CHATBOOK_PUBLIC_URL:-}\n", ""
    )
    errors = _errors(tmp_path, text)
    assert errors == [
        f"{path}:{_line_of(text, 'PUBLIC_URL_FOR_TEST')}: environment variable PUBLIC_URL_FOR_TEST is not set"
    ]


def test_every_problem_is_listed_not_just_the_first(tmp_path: Path) -> None:
    text = _edit("        duration_min: 60\n", "        duration_min: 61\n").replace(
        "    timezone: Asia/Shanghai", "    timezone: Mars/Olympus", 1
    )
    errors = _errors(tmp_path, text)
    assert len(errors) == 2
    assert any("Mars/Olympus" in e for e in errors) and any("multiple of 5" in e for e in errors)


def test_server_refuses_to_start_on_bad_config(tmp_path: Path) -> None:
    # A real `python -m bot` process: its exit code and stderr, as an admin's shell sees them.
    path = tmp_path / "config.yaml"
    text = _edit("    timezone: Asia/Shanghai", "    timezone: Nowhere/City")
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{path}:{_line_of(text, 'Nowhere/City')}: shops.pawspa.timezone: unknown time zone" in proc.stderr
    assert "nothing was started" in proc.stderr


def test_config_check_command(tmp_path: Path) -> None:
    ok = run_chatbook("config", "check", "--config", str(CONFIG_PATH))  # bot.cli.main, in this process
    assert ok.returncode == 0, ok.stderr
    assert "shop pawspa: 6 services, 3 staff" in ok.stdout


def test_flow_idle_and_trusted_proxies(tmp_path: Path) -> None:
    config = load_config(CONFIG_PATH, environ={})
    assert config.shops["pawspa"].booking.flow_idle_min == 30 and config.shops["clearsight"].booking.flow_idle_min == 30
    assert config.server.trusted_proxies == []
    text = _edit("  trusted_proxies: []", '  trusted_proxies: ["127.0.0.1", "10.0.0.0/8", "::1"]')
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path, environ={}).server.trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "::1"]
    text = _edit("  trusted_proxies: []", '  trusted_proxies: ["10.0.0.0/33"]')
    [error] = _errors(tmp_path, text)
    assert f"config.yaml:{_line_of(text, '10.0.0.0/33')}: server.trusted_proxies:" in error
    assert "not an IP address or network" in error
