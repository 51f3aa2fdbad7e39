"""FAQ data model: the validated shapes the loader produces and the matcher consumes.

Owns `FaqEntry`, `Faq` and `FaqError`. Nothing here reads files or scores text.
The pydantic models are strict (no type coercion) and forbid unknown keys, so a typo
such as `anwser:` or `handoff: "maybe"` is reported instead of silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from core.i18n import language_tag

DEFAULT_ROUTES: frozenset[str] = frozenset({"front_desk", "groomer", "optometrist"})
REQUIRED_LANGUAGES: tuple[str, ...] = ("zh", "en")

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True, slots=True)
class FaqError:
    """One problem in one FAQ file, printable as `FILE:LINE: reason`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Answer(_Strict):
    """The reply in every supported language; both zh and en are required."""

    zh: NonEmptyStr
    en: NonEmptyStr

    def for_language(self, language: str) -> str:
        """The answer in `language` ("zh*" -> zh, anything else -> en; core.i18n.language_tag)."""
        return self.zh if language_tag(language) == "zh" else self.en


class FaqEntry(_Strict):
    """One question/answer pair as admins write it."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    questions: list[NonEmptyStr] = Field(default_factory=list)
    keywords: list[NonEmptyStr] = Field(default_factory=list)
    answer: Answer
    route: NonEmptyStr | None = None
    handoff: bool = False
    # Extensions (documented at the top of each shop YAML):
    threshold: Annotated[float, Field(ge=0, le=100)] | None = None
    links: list[NonEmptyStr] = Field(default_factory=list)

    @field_validator("threshold", mode="before")
    @classmethod
    def _int_threshold(cls, value: object) -> object:
        # strict mode refuses int for float; `threshold: 80` is what admins write.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("links")
    @classmethod
    def _http_links(cls, links: list[str]) -> list[str]:
        for link in links:
            if not link.startswith(("http://", "https://")):
                raise ValueError(f"link must start with http:// or https://: {link!r}")
        return links


@dataclass(frozen=True, slots=True)
class Faq:
    """A validated FAQ file: one shop, its entries, its shop-wide synonyms and lexicon sets.

    `lexicon` adds words to the shipped paraphrase sets (faq/lexicon/*.yaml) or adds new sets;
    `trades` picks the shipped trade lexicons (None: chosen from the FAQ's own wording);
    `lines` maps an entry id to the line of its `- id:` in the file (0 when unknown).
    """

    shop: str
    entries: tuple[FaqEntry, ...]
    synonyms: dict[str, tuple[str, ...]]
    source: Path | None = None
    lexicon: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trades: tuple[str, ...] | None = None
    lines: dict[str, int] = field(default_factory=dict)
    _by_id: dict[str, FaqEntry] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((item.id, item) for item in self.entries)

    def entry(self, entry_id: str) -> FaqEntry | None:
        """The entry with this id, or None."""
        return self._by_id.get(entry_id)
