"""jieba is set up once per process, quietly: no log lines on the console, no cache file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import time
start = time.perf_counter()
from faq import FaqMatcher, load_faq
from faq.segment import tokenizer
for name in ("pawspa", "clearsight", "pawspa"):
    matcher = FaqMatcher(load_faq(f"faq/{name}.yaml"))
first = tokenizer()
assert tokenizer() is first
print(matcher.match("你们提供接送吗").candidates[0].id, round(time.perf_counter() - start, 2))
"""


def test_jieba_is_quiet_and_set_up_once(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "",
                                                         "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # jieba's "Building prefix dict..." lines are silenced
    assert proc.stdout.split()[0] == "pickup"
    assert list(tmp_path.iterdir()) == []  # no jieba.cache written
