"""Learning from chats: add a customer's phrasing to an entry, and group unanswered questions.

Owns two things the staff console offers on its FAQ page:
  * `add_phrasing(path, entry_id, phrasing)`: writes the phrasing under the entry's
    `questions:` in the shop's YAML file, keeping the file's comments, key order and style
    (ruamel.yaml round trip), validates the result with the same loader the server uses,
    and only then replaces the file (atomically). A bad result leaves the file untouched.
    `FaqRegistry.add_phrasing(shop, entry_id, phrasing)` does this for the file serving a
    shop and hot-reloads it at once.
  * `group_unanswered(questions)`: near-duplicate questions ("几点开门", "几点开门啊？",
    "你们几点开门") in one group with a count, most asked first.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from faq.loader import parse_faq
from faq.model import Faq, FaqError
from faq.normalize import normalize

MAX_PHRASING = 200


@dataclass(frozen=True, slots=True)
class PhrasingResult:
    """What `add_phrasing` did: the FAQ now on disk, or why nothing was written."""

    added: bool  # False when the entry already had this phrasing (nothing written)
    faq: Faq | None
    errors: tuple[FaqError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an admin's long answer
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def add_phrasing(
    path: str | Path, entry_id: str, phrasing: str, known_routes: Iterable[str] | None = None
) -> PhrasingResult:
    """Append `phrasing` to entry `entry_id`'s questions in the FAQ file at `path`."""
    file = str(path)
    text = " ".join(phrasing.split())
    if not text:
        return PhrasingResult(False, None, (FaqError(file, 1, "the phrasing is empty"),))
    if len(text) > MAX_PHRASING or any(ord(ch) < 32 for ch in text):
        return PhrasingResult(False, None, (FaqError(file, 1, f"the phrasing must be one line of at most "
                                                              f"{MAX_PHRASING} characters"),))
    try:
        original = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return PhrasingResult(False, None, (FaqError(file, 1, f"cannot read file: {exc}"),))
    current = parse_faq(original, file, known_routes)
    if isinstance(current, list):
        return PhrasingResult(False, None, tuple(current))  # fix the file first
    entry = current.entry(entry_id)
    if entry is None:
        return PhrasingResult(False, current, (FaqError(file, 1, f"no entry '{entry_id}' in this file"),))
    if any(normalize(q) == normalize(text) for q in entry.questions):
        return PhrasingResult(False, current)
    yaml = _round_trip()
    try:
        data = yaml.load(original)
    except YAMLError as exc:  # the loader accepted it, so this is unexpected
        return PhrasingResult(False, current, (FaqError(file, 1, f"cannot edit the file: {exc}"),))
    target = next((e for e in data.get("entries", []) if isinstance(e, CommentedMap)
                   and e.get("id") == entry_id), None)
    assert target is not None
    questions = target.get("questions")
    if questions is None:
        questions = CommentedSeq()
        keys = list(target.keys())
        target.insert(keys.index("id") + 1 if "id" in keys else 0, "questions", questions)
    questions.append(text)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    updated = buffer.getvalue()
    parsed = parse_faq(updated, file, known_routes)
    if isinstance(parsed, list):
        return PhrasingResult(False, current, tuple(parsed))
    _replace(Path(path), updated)
    return PhrasingResult(True, parsed)


def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (readers see the old or the new file, never half)."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class QuestionGroup:
    """Near-duplicate unanswered questions: the most asked wording, how often, the others."""

    text: str
    count: int
    variants: tuple[str, ...]


def group_unanswered(
    questions: Iterable[str | tuple[str, int]], similarity: float = 80.0
) -> list[QuestionGroup]:
    """Group near-duplicate questions (rapidfuzz ratio on normalised text >= `similarity`).

    `questions` are texts, or (text, count) pairs when already counted. Groups are returned
    most asked first; each group's `text` is its most asked wording.
    """
    counts: dict[str, int] = {}
    wording: dict[str, dict[str, int]] = {}
    for item in questions:
        text, count = (item, 1) if isinstance(item, str) else item
        plain = normalize(text, particles=True)
        key = plain.replace(" ", "") if any(ord(c) > 0x2E7F for c in text) else plain
        if not key:
            continue
        counts[key] = counts.get(key, 0) + count
        wording.setdefault(key, {})[text.strip()] = wording.get(key, {}).get(text.strip(), 0) + count
    seen: list[str] = []  # every wording grouped so far (a question joins the group of its nearest)
    group_of: list[int] = []
    members: list[list[str]] = []
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        best = process.extractOne(key, seen, scorer=fuzz.ratio, processor=None, score_cutoff=similarity)
        if best is None:
            group_of.append(len(members))
            members.append([key])
        else:
            group_of.append(group_of[best[2]])
            members[group_of[best[2]]].append(key)
        seen.append(key)
    groups = []
    for keys_of_group in members:
        texts: dict[str, int] = {}
        for key in keys_of_group:
            for text, count in wording[key].items():
                texts[text] = texts.get(text, 0) + count
        ordered: Sequence[str] = sorted(texts, key=lambda t: (-texts[t], t))
        groups.append(QuestionGroup(ordered[0], sum(texts.values()), tuple(ordered[1:])))
    return sorted(groups, key=lambda g: (-g.count, g.text))
