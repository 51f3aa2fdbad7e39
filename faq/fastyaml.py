"""The fast path for reading a large FAQ file: yaml-rs (Rust) instead of PyYAML, when that
provably gives the same data.

Owns one question: can this text be read by the fast parser with exactly the result of the
project's safe YAML loader (core/yamlsource.py, PyYAML with line numbers)? PyYAML builds a
Python object for every event and node, which costs about 5 s for a 10,000-entry FAQ (6 MB);
yaml-rs reads the same file in about 0.3 s. The two differ where YAML 1.1 (PyYAML) and YAML
1.2 (yaml-rs) differ, and yaml-rs knows nothing of this project's rules, so `fast_data`
returns None (the caller then takes the slow path, which also reports every problem as
FILE:LINE) whenever the text

  * could hold an anchor or alias (`&`, `*`), a tag (`!`), a directive or several documents;
  * does not parse, has a duplicate key, a key that is not text, nesting deeper than allowed,
    or a control character written as an escape;
  * has a text value that YAML 1.1 would read as something else if it was written unquoted
    (`yes`, `on`, `12:30`, `2026-01-02`...) or any number other than an entry's `threshold:`
    written as a plain decimal.

Line numbers are only needed for errors, which the slow path reports, and for the entries'
`- id:` and answer lines (`entry_lines`), found by scanning the text; when an entry's line
cannot be found that way the caller takes the slow path as well.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

yaml_rs: Any
try:  # optional: without it every file takes the slow path
    import yaml_rs
except ImportError:  # pragma: no cover - depends on the installation
    yaml_rs = None

# What may start a tag, a directive or a document marker (anchors and aliases: any & or *).
_TAG = re.compile(r"[\s\[{,]!")
_MARKER = re.compile(r"\n(?:---|\.\.\.|%)")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff\ud800-\udfff]")
# A plain decimal as both YAML versions read it the same way (no leading zero, no exponent).
_PLAIN_NUMBER = re.compile(r"^[ \t]*threshold:[ \t]*(\S+?)[ \t]*(?:#.*)?$", re.MULTILINE)
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_ENTRY_OR_LANGUAGE = re.compile(
    r"^[ \t]*-[ \t]+id:[ \t]*([\"']?)([A-Za-z0-9_.-]+)\1[ \t]*(?:#.*)?$|^[ \t]+(zh|en):", re.MULTILINE)


def _resolver_pattern() -> re.Pattern[str]:
    """One regex for every plain scalar PyYAML's SafeLoader would not read as text."""
    patterns = {
        regexp.pattern
        for resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values()
        for tag, regexp in resolvers
        if tag != "tag:yaml.org,2002:str"
    }
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns)), re.VERBOSE)


_NOT_TEXT_IN_11 = _resolver_pattern()
_FIRST_CHARS = frozenset(
    ch for ch in yaml.resolver.Resolver.yaml_implicit_resolvers if ch is not None
)


class _Unsure(Exception):
    """The fast result might differ from the slow one."""


def _walk(value: Any, depth: int, max_depth: int, texts: set[str], numbers: list[float]) -> None:
    """Collect every text (keys too) and number; raise `_Unsure` on anything unexpected."""
    if depth > max_depth:
        raise _Unsure
    kind = type(value)
    if kind is dict:
        if not all(type(key) is str for key in value):
            raise _Unsure
        texts.update(value)
        items = value.values()
    elif kind is list:
        items = value
    else:
        items = (value,)
    for item in items:
        kind = type(item)
        if kind is str:
            texts.add(item)
        elif kind is dict or kind is list:
            _walk(item, depth + 1, max_depth, texts, numbers)
        elif kind is bool or item is None:
            continue
        elif kind is int or kind is float:
            numbers.append(item)
        else:  # dates and anything else yaml-rs may build
            raise _Unsure


def _ambiguous(text: str, escapes: bool) -> bool:
    if not text or (text[0] in _FIRST_CHARS and _NOT_TEXT_IN_11.match(text)):
        return True
    return escapes and _CONTROL.search(text) is not None


def _unsafe(text: str) -> bool:
    return ("&" in text or "*" in text or text.startswith(("!", "---", "...", "%"))
            or ("!" in text and _TAG.search(text) is not None) or _MARKER.search(text) is not None
            or _CONTROL.search(text) is not None)


def fast_data(text: str, max_depth: int) -> Any | None:
    """The document as plain data, or None when only the slow path can be trusted."""
    if yaml_rs is None or _unsafe(text):
        return None
    try:
        data = yaml_rs.loads(text, parse_datetime=False,
                             duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
    except Exception:
        return None
    texts: set[str] = set()
    numbers: list[float] = []
    try:
        _walk(data, 0, max_depth, texts, numbers)
    except (_Unsure, RecursionError):
        return None
    escapes = "\\" in text  # a control character can only come from an escape now
    if any(_ambiguous(t, escapes) for t in texts):
        return None
    if numbers:
        written = _PLAIN_NUMBER.findall(text)
        if len(written) != len(numbers) or not all(_DECIMAL.fullmatch(w) for w in written):
            return None
    return data


def entry_lines(text: str, entries: list[Any]) -> dict[str, int] | None:
    """`id -> line` of each entry's `- id:` and `id:answer.zh/en -> line` of its answers,
    or None when an entry is not written as `- id: ...` with `zh:`/`en:` on lines of their own
    (then the slow path knows the lines)."""
    lines: dict[str, int] = {}
    line, offset, index = 1, 0, -1
    current = ""
    for match in _ENTRY_OR_LANGUAGE.finditer(text):
        line += text.count("\n", offset, match.start())
        offset = match.start()
        entry_id, language = match.group(2), match.group(3)
        if entry_id is not None:
            index += 1
            raw = entries[index] if index < len(entries) else None
            if not isinstance(raw, dict) or raw.get("id") != entry_id:
                return None
            current = entry_id
            lines[entry_id] = line
        elif current:
            lines.setdefault(f"{current}:answer.{language}", line)
    if index != len(entries) - 1 or len(lines) != 3 * len(entries):  # an answer written inline
        return None
    return lines
