"""Shop facts live in config.yaml only: the shipped answers use placeholders the engine fills
in, and `faq check` names the FILE:LINE of an answer that copies a price or the address."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_config
from core.shop_facts import render_facts
from faq import Faq, load_faq
from tests.faq.conftest import FAQ_DIR, write

ROOT = FAQ_DIR.parent


def _check(directory: Path, *extra: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faq.cli", "faq", "check", str(directory), *extra],
                          capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})


@pytest.mark.parametrize("shop", ["pawspa", "clearsight"])
def test_shipped_answers_render_the_facts_config_knows(shop: str) -> None:
    config = load_config(ROOT / "config.yaml")
    faq = load_faq(FAQ_DIR / f"{shop}.yaml")
    assert isinstance(faq, Faq)
    rendered = {(e.id, lang): render_facts(e.answer.for_language(lang), config.shops[shop], lang)
                for e in faq.entries for lang in ("zh", "en")}
    assert not [k for k, text in rendered.items() if "{" in text]
    address = config.shops[shop].address
    assert address.zh in rendered[("address", "zh")] and address.en in rendered[("address", "en")]
    if shop == "pawspa":
        price = config.shops[shop].services["dog_bath_small"].price
        assert f"¥{price}" in rendered[("dog_bath_price", "zh")]


def test_shipped_faqs_pass_the_check_against_the_shipped_config() -> None:
    proc = _check(FAQ_DIR, "--config", str(ROOT / "config.yaml"))
    assert proc.returncode == 0, proc.stderr


def test_a_copied_price_or_address_is_reported_with_its_line(tmp_path: Path) -> None:
    text = (FAQ_DIR / "pawspa.yaml").read_text(encoding="utf-8")
    text = text.replace("猫咪洗澡 {price:cat_bath}", "猫咪洗澡 ¥158").replace(
        "We're at {address}.", "We're at 1F, 88 Wanping South Road, Xuhui, Shanghai.").replace(
        "刷牙 {price:teeth}", "刷牙 {price:teethbrush}")
    path = write(tmp_path / "pawspa.yaml", text)
    lines = text.splitlines()
    line_of = lambda needle: next(i for i, line in enumerate(lines, 1) if needle in line)  # noqa: E731
    proc = _check(tmp_path, "--config", str(ROOT / "config.yaml"))
    assert proc.returncode == 1
    assert f"{path}:{line_of('猫咪洗澡 ¥158')}: entry 'cat_bath_price': answer.zh hard-codes the price ¥158" \
        in proc.stderr
    assert f"{path}:{line_of('88 Wanping')}: entry 'address': answer.en hard-codes the shop's address" \
        in proc.stderr
    assert f"{path}:{line_of('teethbrush')}: entry 'add_ons': answer.zh {{price:teethbrush}}: no service" \
        in proc.stderr


def test_without_a_config_check_and_match_still_work(tmp_path: Path) -> None:
    faq_dir = tmp_path / "faqs"
    faq_dir.mkdir()
    write(faq_dir / "pawspa.yaml", (FAQ_DIR / "pawspa.yaml").read_text(encoding="utf-8"))
    assert _check(faq_dir, cwd=tmp_path).returncode == 0  # no ./config.yaml there: syntax only
    proc = subprocess.run([sys.executable, "-m", "faq.cli", "match", "--faq-dir", str(faq_dir), "几点开门"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 0 and '"id": "hours"' in proc.stdout
