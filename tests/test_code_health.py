"""Code-health rules no linter checks for us.

mypy (run by `make test`) already refuses a type-ignore comment without an error code and one
that no longer suppresses anything; this adds the rest of the rule: each one says why, on the
same line, as a second comment (``... [code]  # the reason``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("core", "bot", "channels", "faq", "tests", "bench")
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def unexplained_ignores(paths: list[Path], root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = IGNORE.search(line)
            if match is None:
                continue
            reason = match.group("rest").strip()
            if not match.group("codes") or not reason.startswith("#") or not reason.lstrip("# ").strip():
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_every_type_ignore_names_its_code_and_its_reason() -> None:
    paths = [p for top in CHECKED for p in sorted((ROOT / top).rglob("*.py")) if p != Path(__file__).resolve()]
    offenders = unexplained_ignores(paths)
    assert not offenders, "add '  # why' after the code:\n" + "\n".join(offenders)


def test_the_rule_itself(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "a = f()  # type: ignore\n"
        "b = f()  # type: ignore[arg-type]\n"
        "c = f()  # type: ignore[arg-type]  # wechatpy ships no types\n"
        "d = 'not a comment'\n",
        encoding="utf-8",
    )
    found = [line.split(":")[1] for line in unexplained_ignores([sample], root=tmp_path)]
    assert found == ["1", "2"]
