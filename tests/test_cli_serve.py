"""`chatbook serve` as a user runs it: migrates, listens, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import CONFIG_PATH


def test_serve_starts_answers_and_stops(tmp_path: Path) -> None:
    env = {**os.environ, "CHATBOOK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--config", str(CONFIG_PATH), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        banner = "".join(lines)
        match = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)/api/shops", banner)
        assert match, banner
        base = match.group(1)
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
            assert json.load(resp)["status"] == "ok"
        with urllib.request.urlopen(f"{base}/api/shops", timeout=10) as resp:
            assert {s["id"] for s in json.load(resp)["shops"]} == {"pawspa", "clearsight"}
        assert (tmp_path / "serve.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=20)
    assert proc.returncode == 0, errors
