"""`faq check` and `faq match` as a user runs them: exit codes and the JSON contract.

The first test runs `python -m faq.cli` as a real process; the others call its ``main`` in this
process (tests/support/cli.py), which parses and matches exactly the same way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.faq.conftest import FAQ_DIR, GOOD, write
from tests.support.cli import CliResult, run_faq_cli

ROOT = FAQ_DIR.parent


def _run(*args: str, stdin: str = "") -> CliResult:
    """``python -m faq.cli <args>`` through ``faq.cli.main`` in this process (tests/support/cli.py)."""
    return run_faq_cli(*args, stdin=stdin, cwd=ROOT)


def test_check_accepts_the_shipped_faqs() -> None:
    # A real process, once: `python -m faq.cli` itself, its exit code, and nothing on its stderr.
    proc = subprocess.run(
        [sys.executable, "-m", "faq.cli", "faq", "check", str(FAQ_DIR)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    ok_lines = proc.stdout.splitlines()
    assert len(ok_lines) == 2 and all("OK" in line for line in ok_lines)


def test_check_reports_file_line_reason_and_fails(tmp_path: Path) -> None:
    bad = write(tmp_path / "pawspa.yaml", GOOD.replace("route: front_desk", "route: grommer"))
    proc = _run("faq", "check", str(tmp_path))
    assert proc.returncode == 1
    assert f"{bad}:11: " in proc.stderr and "unknown route 'grommer'" in proc.stderr


def test_match_prints_one_json_object(tmp_path: Path) -> None:
    proc = _run("faq", "match", "--faq-dir", str(FAQ_DIR), "--shop", "clearsight",
                "散瞳后多久能恢复")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {"id", "score", "candidates"}
    assert record["candidates"][0] == "dilation" and len(record["candidates"]) <= 3
    assert record["id"] == "dilation" and 0 <= record["score"] <= 100


def test_match_reads_stdin_line_by_line_and_nulls_off_topic() -> None:
    questions = ["猫没打疫苗可以洗澡吗", "can you fix my car", "散瞳以后能开车吗", "今天股市怎么样"]
    proc = _run("match", "--faq-dir", str(FAQ_DIR), stdin="\n".join(questions) + "\n")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in records] == ["unvaccinated_cat", None, "dilation", None]
    assert all(isinstance(r["score"], int | float) for r in records)


def test_match_works_on_any_directory(tmp_path: Path) -> None:
    write(tmp_path / "whatever.yaml", GOOD.replace("shop: pawspa", "shop: not-in-config"))
    proc = _run("faq", "match", "--faq-dir", str(tmp_path), "is there parking?")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["id"] == "parking"
