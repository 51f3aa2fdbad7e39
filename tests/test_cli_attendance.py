"""`chatbook booking mark` and `chatbook report`: attendance recorded by staff, rates per month.

The commands run in this process through ``bot.cli.main`` (tests/support/cli.py), each on its own
bootstrap of the database as for a user; tests/test_cli_serve.py and tests/test_config.py prove the
``python -m bot`` entry point itself in real processes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bot.bootstrap import bootstrap
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import load_config
from core.results import Actor, Booked
from tests.conftest import CONFIG_PATH
from tests.helpers import copy_sqlite, sqlite_template
from tests.support.cli import CliResult, run_chatbook


def _cli(env: dict[str, str], *args: str) -> CliResult:
    return run_chatbook(*args, "--config", str(CONFIG_PATH), env=env)


def test_mark_attendance_and_monthly_report(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    env = {"CHATBOOK_DATABASE_URL": url}
    config = load_config(CONFIG_PATH, environ={})

    async def seed() -> list[str]:
        # Past visits, booked back then, so the CLI (on the real clock) may mark them.
        copy_sqlite(await sqlite_template(config), tmp_path / "a.db")  # migrated and synced once per process
        clock = FixedClock(datetime(2026, 10, 1, 1, 0, tzinfo=UTC))
        services = await bootstrap(config, clock=clock, database_url=url, migrate=False, sync=False)
        codes = []
        for hour in (2, 3, 4, 6):  # 10:00, 11:00, 12:00, 14:00 in Shanghai on Mon 5 Oct
            start = datetime(2026, 10, 5, hour, 0, tzinfo=UTC)
            result = await services.bookings.book(
                BookingRequest("clearsight", "adult_exam", start), Actor.staff("desk")
            )
            assert isinstance(result, Booked)
            codes.append(result.booking.code)
        await services.close()
        return codes

    codes = asyncio.run(seed())
    for code, outcome in zip(codes, ("completed", "completed", "completed", "no_show"), strict=True):
        done = _cli(env, "booking", "mark", "--shop", "clearsight", code, outcome)
        assert done.returncode == 0, done.stderr
        assert f"{code}: {outcome.replace('_', '-')} recorded" in done.stdout
    again = _cli(env, "booking", "mark", "--shop", "clearsight", codes[0], "no_show")
    assert again.returncode == 1 and "completed" in again.stderr
    unknown = _cli(env, "booking", "mark", "--shop", "clearsight", "NOPE42", "arrived")
    assert unknown.returncode == 1 and "no booking NOPE42" in unknown.stderr
    report = _cli(env, "report", "--shop", "clearsight")
    assert report.returncode == 0, report.stderr
    october = next(line for line in report.stdout.splitlines() if line.startswith("2026-10"))
    assert october.split()[:5] == ["2026-10", "4", "3", "1", "0"]
    assert "25%" in october  # 1 no-show out of the 4 expected
