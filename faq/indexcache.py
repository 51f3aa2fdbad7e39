"""The on-disk cache of built FAQ indexes, so that a large FAQ loads in well under 2 s.

Owns one question: may this FAQ file be served from what an earlier process built for it, and
if so, what did it build? A cache file holds the validated FAQ (so the YAML is not read again)
and the matcher's indexes in the compact form of faq/packed.py. It is used only when all of
these are what they were when it was written, and is otherwise rebuilt (and rewritten):

  * the FAQ file's content (SHA-256 of its bytes) and the routes it was validated against;
  * the code version: the source of every faq/*.py module and core/yamlsource.py, the shipped
    lexicon files, jieba's dictionary, the versions of Python, marshal and the libraries whose
    output the index holds;
  * for the indexes: the shared jieba dictionary's added words (every shop's lexicon terms and
    keywords: they change how all text is cut) and the match settings.

A cache file is never trusted blindly: it must start with this format's magic, its payload must
match the SHA-256 its header records, the payload must have the expected shape and the FAQ's own
entry ids; anything else (a truncated or corrupt file, another file's or another version's
cache, a file that is not ours) is ignored and rebuilt. Writes go to a temporary file that is
renamed into place, so a crash never leaves half a cache; a cache directory that cannot be
written only costs the speed-up. Payloads are `marshal` data (str, int, float, bytes and
containers: nothing is executed when it is read); a person who can write the cache directory
can still change answers, so it belongs with the server's own data, not in a shared /tmp.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import struct
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from faq.matcher import FaqMatcher, MatchSettings
from faq.model import Answer, Faq, FaqEntry
from faq.segment import dictionary_fingerprint, segment_version

log = logging.getLogger(__name__)

MAGIC = b"chatbook-faq-index\x00v1\n"
_LENGTHS = struct.Struct("<QQ")  # header length, payload length
_SUFFIX = ".faqidx"
_FIELDS = tuple(FaqEntry.model_fields)
_FAQ_DIR = Path(__file__).resolve().parent
_LIBRARIES = ("jieba", "snowballstemmer", "rapidfuzz", "pydantic", "yaml-rs", "PyYAML")


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of everything a cached FAQ or index depends on besides the FAQ file itself."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{marshal.version}\0".encode())
    sources = sorted(_FAQ_DIR.glob("*.py")) + sorted((_FAQ_DIR / "lexicon").glob("*.yaml"))
    sources.append(_FAQ_DIR.parent / "core" / "yamlsource.py")
    for path in sources:
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    for name in _LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=-\0".encode())
    try:
        import jieba

        info = (Path(jieba.__file__).parent / "dict.txt").stat()
        digest.update(f"dict={info.st_size}\0".encode())
    except (ImportError, OSError):
        digest.update(b"dict=-\0")
    return digest.hexdigest()


def _routes_key(known_routes: Iterable[str] | None) -> str:
    return "\0".join(sorted(known_routes)) if known_routes is not None else "<default>"


def _settings_key(settings: MatchSettings) -> str:
    return repr(settings)


# -- the FAQ as plain data -------------------------------------------------------------------
def _faq_data(faq: Faq) -> dict[str, Any]:
    entries = []
    for entry in faq.entries:
        values = []
        for name in _FIELDS:
            value = getattr(entry, name)
            if isinstance(value, Answer):
                value = (value.zh, value.en)
            elif isinstance(value, list):
                value = tuple(value)
            values.append(value)
        entries.append((tuple(values), tuple(sorted(entry.model_fields_set))))
    return {"shop": faq.shop, "synonyms": faq.synonyms, "lexicon": faq.lexicon,
            "trades": faq.trades, "lines": faq.lines, "entries": entries}


def _faq_from(data: Mapping[str, Any], source: Path) -> Faq:
    entries = []
    for values, fields_set in data["entries"]:
        item = dict(zip(_FIELDS, values, strict=True))
        zh, en = item["answer"]
        item["answer"] = Answer.model_construct(zh=zh, en=en)
        for name in ("questions", "keywords", "links"):
            item[name] = list(item[name])
        entries.append(FaqEntry.model_construct(_fields_set=set(fields_set), **item))
    trades = data["trades"]
    return Faq(shop=str(data["shop"]), entries=tuple(entries),
               synonyms={str(k): tuple(v) for k, v in data["synonyms"].items()},
               source=source, lexicon={str(k): tuple(v) for k, v in data["lexicon"].items()},
               trades=None if trades is None else tuple(trades), lines=dict(data["lines"]))


# -- the cache files -------------------------------------------------------------------------
@dataclass(slots=True)
class Cached:
    """What a valid cache file holds for one FAQ file (as of its current content)."""

    path: Path  # the cache file
    faq: Faq
    index_key: tuple[str, str]  # (dictionary fingerprint, settings) the indexes were built with
    index: Mapping[str, Any]


class IndexCache:
    """Cache files for FAQ files, one per FAQ file, in `directory` (created when needed)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def file_for(self, source: str | Path) -> Path:
        """The cache file of one FAQ file (named after it; one per FAQ file, replaced on change)."""
        resolved = str(Path(source).resolve())
        tag = hashlib.sha256(resolved.encode()).hexdigest()[:16]
        return self.directory / f"{Path(source).stem}-{tag}{_SUFFIX}"

    @staticmethod
    def content_key(content: bytes, known_routes: Iterable[str] | None) -> tuple[str, str, str]:
        return (code_version(), hashlib.sha256(content).hexdigest(), _routes_key(known_routes))

    def read(self, source: str | Path, content: bytes, known_routes: Iterable[str] | None) -> Cached | None:
        """The cached FAQ and indexes for `source` whose bytes are `content`, or None when there
        is no cache file or it is not valid for exactly this content and code (never raises)."""
        path = self.file_for(source)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        try:
            return self._parse(path, blob, self.content_key(content, known_routes), Path(source))
        except Exception as exc:  # anything unexpected in a cache file: not ours, rebuilt
            log.warning("FAQ index cache %s ignored (%s: %s); rebuilding it", path, type(exc).__name__, exc)
            return None

    @staticmethod
    def _parse(path: Path, blob: bytes, key: tuple[str, str, str], source: Path) -> Cached | None:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _LENGTHS.size:
            raise ValueError("not an FAQ index cache file")
        header_length, payload_length = _LENGTHS.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + _LENGTHS.size
        if start + header_length + payload_length != len(blob):
            raise ValueError("truncated or padded")
        header = marshal.loads(blob[start : start + header_length])
        if not isinstance(header, dict) or not isinstance(header.get("sha256"), str):
            raise ValueError("bad header")
        if tuple(header.get("key", ())) != key:
            return None  # another version of the file or of the code: stale, not broken
        payload_bytes = blob[start + header_length :]
        if hashlib.sha256(payload_bytes).hexdigest() != header["sha256"]:
            raise ValueError("payload does not match its checksum")
        payload = marshal.loads(payload_bytes)
        if not isinstance(payload, dict) or not isinstance(payload.get("index"), dict):
            raise ValueError("bad payload")
        faq = _faq_from(payload["faq"], source)
        index_key = payload["index_key"]
        if not (isinstance(index_key, tuple) and len(index_key) == 2 and all(isinstance(k, str) for k in index_key)):
            raise ValueError("bad index key")
        return Cached(path, faq, (index_key[0], index_key[1]), payload["index"])

    def write(self, source: str | Path, content: bytes, known_routes: Iterable[str] | None,
              matcher: FaqMatcher) -> bool:
        """Store `matcher` (built from `source` with bytes `content`); False when it cannot be
        written (the cache is only a speed-up: the error is logged, nothing else changes)."""
        path = self.file_for(source)
        if matcher.dictionary_version != segment_version():
            return False  # words were added since it was built: its key would not describe it
        try:
            payload = marshal.dumps({
                "faq": _faq_data(matcher.faq),
                "index_key": index_key(matcher.settings),
                "index": matcher.packed(),
            })
            header = marshal.dumps({"key": self.content_key(content, known_routes),
                                    "sha256": hashlib.sha256(payload).hexdigest()})
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=self.directory)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(MAGIC + _LENGTHS.pack(len(header), len(payload)))
                    out.write(header)
                    out.write(payload)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except Exception as exc:
            log.warning("FAQ index cache %s not written (%s: %s)", path, type(exc).__name__, exc)
            return False
        return True


def index_key(settings: MatchSettings) -> tuple[str, str]:
    """What the indexes depend on besides the FAQ and the code: the shared dictionary's added
    words (call after every shop's words are registered) and the match settings."""
    return dictionary_fingerprint(), _settings_key(settings)


def matcher_from(cached: Cached, settings: MatchSettings | None = None) -> FaqMatcher | None:
    """The cached matcher when its indexes were built with today's dictionary and settings;
    None when they were not (or do not fit this FAQ): the caller builds it."""
    settings = settings or MatchSettings()
    from faq.matcher import register_words

    register_words(cached.faq)  # normally done already (the registry registers every shop first)
    if cached.index_key != index_key(settings):
        return None
    try:
        return FaqMatcher.from_packed(cached.faq, cached.index, settings)
    except Exception as exc:
        log.warning("FAQ index cache %s ignored (%s: %s); rebuilding it", cached.path, type(exc).__name__, exc)
        return None


def load_matcher(source: str | Path, faq_loader: Any, cache: IndexCache | None,
                 known_routes: Iterable[str] | None = None,
                 settings: MatchSettings | None = None) -> FaqMatcher | list[Any]:
    """One FAQ file to a matcher, through the cache when it is valid (else built and cached).
    `faq_loader(path, known_routes)` is faq.loader.load_faq (it reports every problem)."""
    content = _read(source)
    cached = cache.read(source, content, known_routes) if cache is not None and content else None
    if cached is not None:
        matcher = matcher_from(cached, settings)
        if matcher is not None:
            return matcher
        faq: Faq | list[Any] = cached.faq
    else:
        faq = faq_loader(source, known_routes)
        if content and _read(source) != content:
            content = b""  # changed while it was read: not cached
    if not isinstance(faq, Faq):
        return faq
    matcher = FaqMatcher(faq, settings)
    if cache is not None and content:
        cache.write(source, content, known_routes, matcher)
    return matcher


def _read(source: str | Path) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError:
        return b""
