"""`chatbook chat` and `chatbook handoff` as an admin uses them.

The customer's terminal chat of the first test is a real `python -m bot chat` process (its stdin
and stdout, staff replies arriving while it waits for input); the staff commands, and the scripted
chat of the second test, run in this process through ``bot.cli.main`` (tests/support/cli.py),
each on its own bootstrap of the same database file, as separate processes would.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from core.i18n import texts
from tests.conftest import CONFIG_PATH
from tests.support.cli import CliResult, run_chatbook

ZH = texts("zh")


def _env(tmp_path: Path) -> dict[str, str]:
    return {"CHATBOOK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", "PYTHONUNBUFFERED": "1"}


def _cli(tmp_path: Path, *args: str, stdin: str = "") -> CliResult:
    config = ["--config", str(CONFIG_PATH)]
    argv = [*args, *config] if args[0] != "handoff" else [*args[:2], *config, *args[2:]]
    return run_chatbook(*argv, env=_env(tmp_path), stdin=stdin)


class Chat:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen = ""

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, fragment: str, within: float = 20) -> str:
        assert self.proc.stdout is not None
        deadline = asyncio.get_running_loop().time() + within
        while fragment not in self.seen:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, f"{fragment!r} never appeared in:\n{self.seen}"
            chunk = await asyncio.wait_for(self.proc.stdout.read(4096), remaining)
            assert chunk, f"chat ended before {fragment!r}:\n{self.seen}"
            self.seen += chunk.decode()
        head, _, self.seen = self.seen.partition(fragment)
        return head + fragment


async def test_terminal_chat_booking_and_staff_handoff(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        "--config",
        str(CONFIG_PATH),
        "--shop",
        "clearsight",
        "--as",
        "陈女士",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **_env(tmp_path)},
    )
    chat = Chat(proc)
    try:
        await chat.send("你好")
        menu = await chat.expect(f"3. {ZH.t('btn.human')}")
        assert f"1. {ZH.t('btn.book')}" in menu
        await chat.send("1")  # numbers press buttons
        await chat.expect(ZH.t("ask.service"))
        await chat.send("人工")
        await chat.expect(str(ZH.entries["handoff.to_staff"]).split("{")[0].strip())  # up to the ETA

        listed = await asyncio.to_thread(_cli, tmp_path, "handoff", "list")
        assert listed.returncode == 0, listed.stderr
        match = re.search(r"#(\d+)\s+clearsight\s+terminal\s+route=front_desk\s+reason=asked", listed.stdout)
        assert match, listed.stdout
        conversation = match.group(1)

        replied = await asyncio.to_thread(_cli, tmp_path, "handoff", "reply", conversation, "您好，我是前台小王")
        assert replied.returncode == 0, replied.stderr
        await chat.expect("您好，我是前台小王")  # delivered into the customer's chat

        await chat.send("请问今天还能验光吗")  # staff have the chat: the bot stays silent
        released = await asyncio.to_thread(_cli, tmp_path, "handoff", "release", conversation)
        assert released.returncode == 0, released.stderr
        before_release = await chat.expect(ZH.t("handoff.released"))
        assert ZH.t("misc.not_understood") not in before_release and "验光" not in before_release.split(">")[-1]
        await chat.send("营业时间是几点？")
        await chat.expect("09:30")  # the bot answers again
    finally:
        if proc.stdin:
            proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0


def test_unanswered_questions_report(tmp_path: Path) -> None:
    # (an answered question in between, so two misses in a row do not hand the chat to staff)
    feed = "你们卖狗粮吗？\n营业时间是几点？\n你们卖狗粮吗？\n营业时间是几点？\n能帮忙代购猫砂吗？\n"
    chat = _cli(tmp_path, "chat", "--shop", "pawspa", "--as", "A", stdin=feed)
    assert chat.returncode == 0, chat.stderr
    report = _cli(tmp_path, "faq", "unanswered", "--shop", "pawspa")
    assert report.returncode == 0, report.stderr
    lines = report.stdout.strip().splitlines()
    assert lines[0].split() == ["2", "你们卖狗粮吗？"]
    assert any("猫砂" in line and line.split()[0] == "1" for line in lines[1:])
