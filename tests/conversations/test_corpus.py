"""The conversation corpus (issue 9): one case per scripted conversation in tests/conversations/corpus/.

Each case plays its conversation over the real engine on a fresh SQLite database (see driver.py)
and fails with the whole transcript when the bot did not do what a good receptionist would.
A corpus file that does not follow the format is one failing case naming the file and the id.
Run one shop or class with -k, e.g. ``pytest tests/conversations -k pawspa_zh``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conversations.driver import CorpusError, Script, load_corpus, run_conversation

SCRIPTS, ERRORS = load_corpus()
# Conversations the engine does not handle yet (issue 9 stays open for them). Each is a strict
# xfail: the day one passes, the run says so and the id must leave this list.
KNOWN_GAPS = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "known_gaps.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)

pytestmark = pytest.mark.corpus


def _case(script: Script) -> object:
    if script.id in KNOWN_GAPS:
        return pytest.param(script, id=script.id, marks=pytest.mark.xfail(strict=True, reason="known gap (issue 9)"))
    return pytest.param(script, id=script.id)


@pytest.mark.parametrize("script", [_case(s) for s in SCRIPTS])
async def test_conversation(script: Script, tmp_path: Path) -> None:
    result = await run_conversation(script, tmp_path)
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)


@pytest.mark.parametrize("error", ERRORS, ids=[f"corpus-error-{e.file}" for e in ERRORS])
def test_corpus_file_is_valid(error: CorpusError) -> None:
    pytest.fail(str(error), pytrace=False)
