"""FAQ file loading and validation: YAML text in, a `Faq` or every `FaqError` out.

Owns the FAQ schema. pydantic validates each entry separately, so one broken entry never
hides problems in the others, and every error comes back as `FILE:LINE: reason`.

The file and its YAML are read by core/yamlsource.py, the project's one safe YAML-with-lines
loader (issue 13; config.yaml is read by it too): the text (`read_source`: not UTF-8 -> the
line of the first bad byte), the data and each key path's line (`YamlDocument.line_of`), with
no anchors or aliases at all (an alias "bomb" is refused before any node is built), no
control characters, no ${ENV} substitution and bounded depth: hostile or accidental input
comes back as FILE:LINE: reason, never a crash or a hang. This module adds the FAQ rules on
top: files over `MAX_BYTES`, unknown keys, missing languages, unknown routes, duplicate ids
and answer placeholders other than `faq.placeholders.KNOWN`.

A large FAQ (10,000 entries, 6 MB) takes about 5 s through PyYAML, so `parse_faq` first tries
faq/fastyaml.py (yaml-rs, ~15x faster), which steps aside whenever its result could differ;
any problem found in its data is reported by reading the file again the slow way, so errors
always come from this loader with their FILE:LINE.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.yamlsource import UPLOAD_MAX_ALIASES, Path_, YamlDocument, YamlSourceError, load_yaml, read_source
from faq.fastyaml import entry_lines, fast_data
from faq.lexicon import trades as shipped_trades
from faq.model import DEFAULT_ROUTES, Faq, FaqEntry, FaqError
from faq.placeholders import placeholder_errors

TOP_LEVEL_KEYS: tuple[str, ...] = ("shop", "entries", "synonyms", "lexicon", "trades")
MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 20
ENTRY_KEYS: tuple[str, ...] = tuple(FaqEntry.model_fields)
ANSWER_KEYS: tuple[str, ...] = ("zh", "en")
_SHOP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class _Doc:
    """The errors found in one FAQ document, each at the line core/yamlsource recorded for its
    key path (`YamlDocument.line_of`; a path with no known key: where the document starts)."""

    def __init__(self, source: YamlDocument, fast: bool = False) -> None:
        self.source = source
        self.file = source.file
        self.errors: list[FaqError] = []
        self.fast = fast  # read by faq/fastyaml.py: no line numbers (errors need the slow path)

    def line(self, path: Path_) -> int:
        """Line of the deepest known prefix of `path` (1-based)."""
        return self.source.line_of(path, top=self.source.lines.get((), 1))

    def error(self, path: Path_, message: str) -> None:
        self.errors.append(FaqError(self.file, self.line(path), message))


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _compose(text: str, file: str, fast: bool = False) -> tuple[_Doc, Any] | list[FaqError]:
    if len(text) > MAX_BYTES:
        return [FaqError(file, 1, f"file is larger than {MAX_BYTES // (1024 * 1024)} MB")]
    if fast:
        data = fast_data(text.removeprefix("\ufeff"), MAX_DEPTH)
        if data is not None:
            return _Doc(YamlDocument(file, data), fast=True), data
    try:
        document = load_yaml(file, text=text.removeprefix("\ufeff"), substitute_env=False,
                             max_aliases=UPLOAD_MAX_ALIASES, max_depth=MAX_DEPTH)
    except YamlSourceError as exc:
        return [FaqError(issue.file, issue.line, issue.message) for issue in exc.issues]
    if document.data is None:
        return [FaqError(file, 1, "file is empty (expected `shop:` and `entries:`)")]
    return _Doc(document), document.data


def _entry_errors(doc: _Doc, index: int, raw: Any) -> FaqEntry | None:
    path: Path_ = ("entries", index)
    if not isinstance(raw, dict):
        doc.error(path, f"entries[{index}]: each entry must be a mapping, got {_describe(raw)}")
        return None
    label = f"entries[{index}]" + (f" (id '{raw['id']}')" if isinstance(raw.get("id"), str) else "")
    try:
        entry = FaqEntry.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc: Path_ = tuple(err["loc"])
            where = _dotted(loc) or "entry"
            kind = err["type"]
            if kind == "missing":
                msg = f"missing `{where}`"
                if loc[:1] == ("answer",) and len(loc) == 2:
                    msg += " (answers need both zh and en)"
            elif kind == "extra_forbidden":
                known = ANSWER_KEYS if loc[:1] == ("answer",) else ENTRY_KEYS
                msg = f"unknown key `{where}`{_did_you_mean(str(loc[-1]), known)}"
            elif kind == "string_too_short":
                msg = f"`{where}` is empty"
            elif kind == "string_pattern_mismatch":
                msg = f"`{where}` may only use letters, digits, '_', '.', '-'"
            else:
                msg = f"`{where}`: {err['msg']}, got {_describe(err['input'])}"
            doc.error((*path, *loc), f"{label}: {msg}")
        return None
    if not entry.questions and not entry.keywords:
        doc.error(path, f"{label}: needs at least one of `questions` or `keywords`")
        return None
    bad = False
    for language in ANSWER_KEYS:
        for message in placeholder_errors(getattr(entry.answer, language)):
            doc.error((*path, "answer", language), f"{label}: answer.{language}: {message}")
            bad = True
    return None if bad else entry


def parse_faq(
    text: str, file: str = "<faq>", known_routes: Iterable[str] | None = None
) -> Faq | list[FaqError]:
    """Validate FAQ YAML `text`; `file` is only used in error messages. Never raises."""
    try:
        # The fast reader when it gives the same data; the slow one reports any problem.
        return _parse_faq(text, file, known_routes, fast=True)
    except Exception as exc:
        return [FaqError(file, 1, f"cannot load: {type(exc).__name__}: {exc}")]


def _parse_faq(
    text: str, file: str, known_routes: Iterable[str] | None, fast: bool = False
) -> Faq | list[FaqError]:
    composed = _compose(text, file, fast)
    if isinstance(composed, list):
        return composed
    doc, data = composed
    routes = frozenset(DEFAULT_ROUTES if known_routes is None else known_routes)
    if not isinstance(data, dict):
        doc.error((), f"top level must be a mapping with `shop:` and `entries:`, "
                      f"got {_describe(data)}")
        return doc.errors
    shop = _shop(doc, data)
    synonyms = _synonyms(doc, data.get("synonyms", {}), "synonyms")
    lexicon = _synonyms(doc, data.get("lexicon", {}), "lexicon")
    trades = _trades(doc, data.get("trades"))
    raw_entries = data.get("entries")
    entries, first_seen = _entries(doc, raw_entries, routes)
    if doc.errors:
        if doc.fast:  # errors need line numbers: read it again with them
            return _parse_faq(text, file, known_routes)
        return sorted(doc.errors, key=lambda e: e.line)
    assert isinstance(shop, str)
    raw_list = raw_entries if isinstance(raw_entries, list) else []
    if doc.fast:
        found = entry_lines(text.removeprefix("\ufeff"), raw_list)
        if found is None:
            return _parse_faq(text, file, known_routes)
        lines = found
    else:
        lines = _entry_lines(doc, raw_list, entries, first_seen)
    return Faq(shop=shop, entries=tuple(entries), synonyms=synonyms,
               source=None if file.startswith("<") else Path(file),
               lexicon=lexicon, trades=trades, lines=lines)


def _shop(doc: _Doc, data: dict[str, Any]) -> Any:
    """The `shop:` value, after reporting unknown top-level keys and a missing or bad shop id."""
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            doc.error((key,), f"unknown top-level key `{key}`{_did_you_mean(key, TOP_LEVEL_KEYS)}")
    shop = data.get("shop")
    if shop is None:
        doc.error(("shop",), "missing `shop:` (the shop id this file serves)")
    elif not isinstance(shop, str) or not _SHOP_RE.match(shop):
        doc.error(("shop",), f"`shop` must be a lowercase id like 'pawspa', got {_describe(shop)}")
    return shop


def _entries(doc: _Doc, raw_entries: Any, routes: frozenset[str]) -> tuple[list[FaqEntry], dict[str, int]]:
    """The valid entries and `id -> line` of each id's first `- id:`; every problem in `doc`."""
    entries: list[FaqEntry] = []
    first_seen: dict[str, int] = {}
    if raw_entries is None:
        doc.error(("entries",), "missing `entries:` (a list of questions and answers)")
    elif not isinstance(raw_entries, list) or not raw_entries:
        doc.error(("entries",), f"`entries` must be a non-empty list, got {_describe(raw_entries)}")
    else:
        for index, raw in enumerate(raw_entries):
            entry = _entry_errors(doc, index, raw)
            if _duplicate_id(doc, index, raw, first_seen) or entry is None:
                continue
            if entry.route is not None and entry.route not in routes:
                doc.error(("entries", index, "route"),
                          f"entries[{index}] (id '{entry.id}'): unknown route '{entry.route}'"
                          f"{_did_you_mean(entry.route, routes)} "
                          f"(known: {', '.join(sorted(routes))})")
                continue
            entries.append(entry)
    return entries, first_seen


def _duplicate_id(doc: _Doc, index: int, raw: Any, first_seen: dict[str, int]) -> bool:
    """True (and reported) when entry `index` repeats an earlier id; else its id is noted."""
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(raw_id, str):
        return False
    if raw_id in first_seen:
        doc.error(("entries", index, "id"),
                  f"entries[{index}]: duplicate id '{raw_id}' (first at line {first_seen[raw_id]})")
        return True
    first_seen[raw_id] = doc.line(("entries", index))
    return False


def _entry_lines(
    doc: _Doc, raw_entries: list[Any], entries: list[FaqEntry], first_seen: dict[str, int]
) -> dict[str, int]:
    """`id -> line` of each entry and `id:answer.zh/en -> line` of its answers."""
    lines = {entry.id: first_seen.get(entry.id, 0) for entry in entries}
    for index, raw in enumerate(raw_entries):
        if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"] in lines:
            for language in ANSWER_KEYS:
                lines[f"{raw['id']}:answer.{language}"] = doc.line(("entries", index, "answer", language))
    return lines


def _trades(doc: _Doc, raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    known = shipped_trades()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        doc.error(("trades",), f"`trades` must be a list like [pet], got {_describe(raw)}")
        return None
    for trade in raw:
        if trade not in known:
            doc.error(("trades",), f"unknown trade '{trade}'{_did_you_mean(trade, known)} "
                                   f"(shipped lexicons: {', '.join(known)})")
    return tuple(raw)


def _synonyms(doc: _Doc, raw: Any, key: str = "synonyms") -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        doc.error((key,), f"`{key}` must map a word to a list of words, got {_describe(raw)}")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for word, variants in raw.items():
        if isinstance(variants, str):
            variants = [variants]
        if (not isinstance(variants, list) or not variants
                or not all(isinstance(v, str) and v.strip() for v in variants)):
            doc.error((key, word),
                      f"{key}.{word}: must be a non-empty list of words, "
                      f"got {_describe(variants)}")
            continue
        out[word] = tuple(v.strip() for v in variants)
    return out


def load_faq(path: str | Path, known_routes: Iterable[str] | None = None) -> Faq | list[FaqError]:
    """Read and validate one FAQ file; returns the `Faq` or every problem found."""
    file = str(path)
    try:
        text = read_source(path)  # FILE:LINE of the first byte that is not UTF-8, as for config.yaml
    except YamlSourceError as exc:
        return [FaqError(issue.file, issue.line, issue.message) for issue in exc.issues]
    # newlines as a text-mode read gives them (the fast path's line scan expects "\n")
    return parse_faq(text.replace("\r\n", "\n").replace("\r", "\n"), file, known_routes)
