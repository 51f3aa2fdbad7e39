"""A broken or hostile FAQ file is one shop's problem, reported with FILE:LINE: the console upload
answers 400 (never 500) and replaces nothing; a NUL in one shop's file on disk does not stop the
server, the other shop's answers or `chatbook staff add` (the commands run through ``bot.cli.main``
in this process, tests/support/cli.py)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services, bootstrap
from bot.web import build_app
from core.clock import FixedClock
from core.config import AppConfig
from tests.conftest import CONFIG_PATH, ROOT
from tests.support.cli import CliResult, run_chatbook
from tests.support.collecting import CollectingChannel
from tests.test_hardening_yaml import BOMB

PASSWORD = "correct horse battery"


@pytest.fixture
def faq_dir(tmp_path: Path, demo_config: AppConfig) -> Path:
    shutil.copytree(demo_config.faq_dir, tmp_path / "faq")
    return tmp_path / "faq"


@pytest.fixture
async def boss(
    faq_dir: Path, demo_config: AppConfig, clock: FixedClock, sqlite_url: str
) -> AsyncIterator[tuple[aiohttp.ClientSession, str, str, Services]]:
    config = demo_config.model_copy(update={"faq_dir": str(faq_dir)})
    services = await bootstrap(config, clock=clock, database_url=sqlite_url)
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin")
    session = await services.accounts.login("boss", PASSWORD, "127.0.0.1")
    assert session is not None
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    http.cookie_jar.update_cookies({"chatbook_session": session.token})
    try:
        yield http, str(server.make_url("")).rstrip("/"), session.csrf, services
    finally:
        await http.close()
        await server.close()
        await services.close()


async def test_a_hostile_upload_is_a_400_with_file_and_line(
    boss: tuple[aiohttp.ClientSession, str, str, Services], faq_dir: Path
) -> None:
    http, base, csrf, services = boss
    good = (faq_dir / "pawspa.yaml").read_text(encoding="utf-8")
    lines = good.splitlines(keepends=True)
    with_nul = "".join(lines[:5]) + "  # a stray \x00 here\n" + "".join(lines[5:])
    last = len(lines) + 1
    cases = [
        (with_nul.encode(), "pawspa.yaml:6: ", "U+0000"),
        ((good + "# a bell \x07 in a comment\n").encode(), f"pawspa.yaml:{last}: ", "U+0007"),
        (("shop: pawspa\n" + BOMB).encode(), "pawspa.yaml:", "anchors"),
        (b"shop: pawspa\nentries:\n  - &e {id: a, questions: [x], answer: {zh: y, en: y}}\n", ":3: ", "anchors"),
        (b"shop: pawspa\nentries: \xff\n", "pawspa.yaml:2: ", "UTF-8"),
        (("bogus_key: 1\n" + good).encode(), "pawspa.yaml:1: ", "bogus_key"),  # the FAQ rules still apply
    ]
    for body, where, why in cases:
        started = time.perf_counter()
        async with http.post(f"{base}/api/console/faq/pawspa", data=body, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 400, await r.text()
            errors = (await r.json())["errors"]
        assert time.perf_counter() - started < 2.0
        assert any(where in e and why in e for e in errors), errors
    assert (faq_dir / "pawspa.yaml").read_text(encoding="utf-8") == good  # nothing was replaced
    assert services.faq is not None
    statuses = {shop: services.faq.status(shop) for shop in ("pawspa", "clearsight")}
    assert all(status is not None and status.ok for status in statuses.values())  # both still serve


def _config(tmp_path: Path, faq_dir: Path) -> Path:
    text = CONFIG_PATH.read_text(encoding="utf-8").replace("faq_dir: faq", f"faq_dir: {faq_dir}")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _chatbook(*args: str, env: dict[str, str], stdin: str = "") -> CliResult:
    """``chatbook <args>`` from the repository root, through ``bot.cli.main`` in this process
    (tests/support/cli.py): the command bootstraps and reads the FAQ files as for a user."""
    return run_chatbook(*args, env=env, stdin=stdin, cwd=ROOT)


async def test_a_nul_in_one_shops_faq_touches_nothing_else(
    tmp_path: Path, faq_dir: Path, demo_config: AppConfig, clock: FixedClock, sqlite_url: str
) -> None:
    _nul_in(faq_dir / "clearsight.yaml")
    config = demo_config.model_copy(update={"faq_dir": str(faq_dir)})
    services = await bootstrap(config, clock=clock, database_url=sqlite_url)  # the server still starts
    try:
        assert services.faq is not None
        status = services.faq.status("pawspa")
        assert status is not None and status.ok
        chat = CollectingChannel(services.engine, "pawspa", user="other-shop")
        replies = await chat.push("营业时间是几点？")
        assert replies and "10:00" in replies[0].text  # the other shop answers as before
        services.faq.reload_if_changed()  # hot reload of the broken directory is quiet too
    finally:
        await services.close()
    done = await asyncio.to_thread(_chatbook, "faq", "check", str(faq_dir), env={})
    assert done.returncode != 0 and "Traceback" not in done.stderr + done.stdout
    assert "clearsight.yaml:" in done.stdout + done.stderr


def _nul_in(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace("entries:", "entries: # \x00", 1), encoding="utf-8")


def test_staff_add_works_whatever_the_faq_files_hold(tmp_path: Path, faq_dir: Path, sqlite_url: str) -> None:
    _nul_in(faq_dir / "clearsight.yaml")
    env = {"CHATBOOK_DATABASE_URL": sqlite_url}
    path = _config(tmp_path, faq_dir)
    done = _chatbook(
        "staff",
        "add",
        "--config",
        str(path),
        "mei",
        "--shop",
        "pawspa",
        "--password-stdin",
        env=env,
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "mei: staff of pawspa" in done.stdout
    done = _chatbook("staff", "logout", "--config", str(path), "mei", env=env)
    assert done.returncode == 0 and "0 session(s) ended" in done.stdout, done.stderr
