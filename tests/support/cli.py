"""Run the `chatbook` command line in the test's own process: test support, not shipped.

``run_chatbook("booking", "mark", ..., env={...})`` calls ``bot.cli.main(argv)`` — the function the
``chatbook`` console script and ``python -m bot`` call — and ``run_faq_cli(...)`` calls
``faq.cli.main(argv)`` (``python -m faq.cli``). Each returns the exit code, stdout and stderr the
way a subprocess would show them, without paying Python's start-up and imports (2–3 s) again per
invocation: the command still opens the database, migrates, syncs the catalog and loads the FAQ
files exactly as it does for a user.

What a real process would do is emulated, so the same assertions hold:
- ``env`` is laid over ``os.environ`` for the call (``CHATBOOK_DATABASE_URL`` ...), then restored;
- ``stdin`` is what the command reads from standard input (``--password-stdin``, ``chat``, ``faq match``);
- the exit code: the return value of ``main``, or the code of a ``SystemExit`` (argparse errors are 2;
  ``SystemExit("message")`` prints the message and is 1); any other exception is printed as a
  traceback on stderr and is 1, as Python does;
- logging: ``main`` configures the root logger as in a fresh process (pytest's handlers are set
  aside for the call), so log lines land on the captured stderr; levels and handlers are put back.

``serve`` is not for this runner (it installs signal handlers and runs until stopped): the tests
that prove the entry point itself (``python -m bot serve``, the exit code of ``python -m bot``,
``python -m faq.cli``) keep a real subprocess. Every command here runs its own ``asyncio.run``,
so an async test calls ``await asyncio.to_thread(run_chatbook, ...)``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# the loggers bot.cli.main sets a level on, besides the root logger
_LOGGERS = ("", "alembic", "faq")


@dataclass(frozen=True)
class CliResult:
    """What a finished command showed: like ``subprocess.CompletedProcess`` with text output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_chatbook(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    cwd: Path | str | None = None,
) -> CliResult:
    """``chatbook <args>`` (``bot.cli.main``) in this process."""
    from bot.cli import main

    return _run(main, args, env=env, stdin=stdin, cwd=cwd)


def run_faq_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    cwd: Path | str | None = None,
) -> CliResult:
    """``python -m faq.cli <args>`` (``faq.cli.main``) in this process."""
    from faq.cli import main

    return _run(main, args, env=env, stdin=stdin, cwd=cwd)


def _run(
    main: Callable[[Sequence[str] | None], int],
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    stdin: str,
    cwd: Path | str | None,
) -> CliResult:
    argv = tuple(str(a) for a in args)
    out, err = io.StringIO(), io.StringIO()
    with _environ(env or {}), _cwd(cwd), _fresh_logging(), _streams(stdin, out, err):
        try:
            code = _exit_code(main(list(argv)))
        except SystemExit as exc:
            code = _exit_code(exc.code, err)
        except Exception:  # what an uncaught exception does to a process: traceback, exit 1
            traceback.print_exc(file=err)
            code = 1
    return CliResult(argv, code, out.getvalue(), err.getvalue())


def _exit_code(value: object, err: io.StringIO | None = None) -> int:
    """The process exit status ``sys.exit(value)`` gives."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if err is not None:
        print(value, file=err)
    return 1


@contextlib.contextmanager
def _environ(overrides: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _cwd(directory: Path | str | None) -> Iterator[None]:
    if directory is None:
        yield
        return
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """The root logger without handlers, as in a new process (``logging.basicConfig`` in ``main``
    then adds its own on the captured stderr); afterwards everything as it was."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    root.handlers = []
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _streams(stdin: str, out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
