"""THE YAML loader of the project: safe YAML with line numbers and ${ENV} substitution.

Admins edit YAML by hand, so every error we report names the file and the line. This module
parses a document into plain Python data plus a map from each key path (e.g.
``("shops", "pawspa", "services", "bath", "duration_min")``) to the 1-based line where it
appears, and substitutes ``${VAR}`` / ``${VAR:-default}`` in string scalars from the
environment (secrets never live in the file; ``substitute_env=False`` turns it off).
Its users: core/config.py (config.yaml), faq/loader.py (every FAQ file, on start, reload and
console upload, with ``UPLOAD_MAX_ALIASES``) and bot/console/api.py (the upload's bytes through
``decode_source``); faq/fastyaml.py is a speed path for big FAQ files that steps aside whenever
its result could differ from this module's.

Hostile or broken input is an error with FILE:LINE, never a traceback and never a hang:
- anchors/aliases beyond ``max_aliases`` (config: a few; uploads: ``UPLOAD_MAX_ALIASES`` = none
  at all), recursive aliases, and documents that expand past ``max_nodes`` (alias bombs);
- nesting deeper than ``max_depth``;
- control characters (NUL, BEL, ESC, DEL, C1...), raw or written as escapes in quoted text;
- text that is not UTF-8, impossible dates (2026-02-30), duplicate keys, unset variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class SourceIssue:
    """One problem in a YAML source, pinned to a line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class YamlDocument:
    """Parsed data plus where each key path came from."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_, *, top: int = 1) -> int:
        """Line of the longest known prefix of ``path``; ``top`` when no key of it is known (the
        config says line 1; the FAQ says the line where the document's first node starts)."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return top


class YamlSourceError(Exception):
    """Raised with every issue found; ``issues`` keeps them for callers that list them."""

    def __init__(self, issues: list[SourceIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


DEFAULT_MAX_ALIASES = 32  # config files: a few shared blocks (shifts, hours) are fine
UPLOAD_MAX_ALIASES = 0  # files uploaded through the console: no anchors or aliases at all
DEFAULT_MAX_NODES = 200_000  # values after expanding aliases
DEFAULT_MAX_DEPTH = 64
# Characters YAML itself accepts, minus the C0/C1 controls and DEL (tab, LF, CR and NEL stay).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff\ud800-\udfff]")
_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 0x1B: "ESC", 0x7F: "DEL"}


class _Stop(Exception):
    """Abandon the document: one issue says why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _char(ch: str) -> str:
    name = _NAMES.get(ord(ch))
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def _control_issue(text: str, line_offset: int = 0) -> tuple[int, str] | None:
    found = _CONTROL.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1 + line_offset
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return line, f"control character {_char(found.group())} at column {column} is not allowed (remove it)"


# libyaml when present (about 20x faster on a FAQ file); the same rules either way.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if yaml.__with_libyaml__ else yaml.SafeLoader


def _check_events(text: str, max_aliases: int, max_depth: int) -> None:
    """Count anchors, aliases and depth from the parser's events, before any node is built."""
    aliases = depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if max_aliases <= 0 and (isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None):
            raise _Stop(line, "anchors and aliases (&name, *name) are not allowed in this file")
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise _Stop(line, f"more than {max_aliases} aliases (*name): refused (an alias bomb?)")
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > max_depth:
                raise _Stop(line, f"nested more than {max_depth} levels deep")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def read_source(path: str | Path) -> str:
    """The text of a YAML file; YamlSourceError with FILE:LINE when it cannot be read or is not
    UTF-8 (the line of the first bad byte)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise YamlSourceError([SourceIssue(str(path), 1, f"cannot read file: {exc.strerror or exc}")]) from None
    return decode_source(raw, str(path))


def decode_source(raw: bytes, name: str) -> str:
    """``raw`` as UTF-8 text; YamlSourceError naming the line of the first bad byte otherwise."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlSourceError([SourceIssue(name, line, f"not UTF-8 text ({exc.reason})")]) from None


def load_yaml(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    text: str | None = None,
    substitute_env: bool = True,
    max_aliases: int = DEFAULT_MAX_ALIASES,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> YamlDocument:
    """Parse ``path`` (or ``text`` labelled with ``path``) into a YamlDocument.

    Raises YamlSourceError (never anything else) for unreadable files, syntax errors, control
    characters, too many or recursive aliases, too deep or too large documents, bad scalars,
    duplicate keys and unset environment variables.
    """
    name = str(path)
    try:
        return _load(name, path, text, environ, substitute_env, max_aliases, max_nodes, max_depth)
    except YamlSourceError:
        raise
    except _Stop as stop:
        raise YamlSourceError([SourceIssue(name, stop.line, stop.message)]) from None
    except RecursionError:
        raise YamlSourceError([SourceIssue(name, 1, "nested too deeply")]) from None
    except Exception as exc:  # a YAML we cannot read is a reported problem, never a crash
        raise YamlSourceError([SourceIssue(name, 1, f"unreadable YAML ({type(exc).__name__})")]) from None


def _load(
    name: str,
    path: str | Path,
    text: str | None,
    environ: Mapping[str, str] | None,
    substitute_env: bool,
    max_aliases: int,
    max_nodes: int,
    max_depth: int,
) -> YamlDocument:
    if text is None:
        text = read_source(path)
    control = _control_issue(text)
    if control is not None:
        raise _Stop(*control)
    loader = None
    try:
        _check_events(text, max_aliases, max_depth)
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        reason = exc.problem or exc.context or "invalid YAML"
        raise YamlSourceError([SourceIssue(name, line, f"YAML syntax error: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError([SourceIssue(name, 1, f"YAML error: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    doc = YamlDocument(file=name, data=None)
    issues: list[SourceIssue] = []
    env = os.environ if environ is None else environ
    if node is not None:
        walk = _Walk(doc, issues, env if substitute_env else None, max_nodes)
        doc.data = walk.convert(node, (), ())
    if issues:
        raise YamlSourceError(issues)
    return doc


class _Walk:
    """Nodes -> plain data, recording lines; guards against recursion and expansion."""

    def __init__(
        self, doc: YamlDocument, issues: list[SourceIssue], env: Mapping[str, str] | None, max_nodes: int
    ) -> None:
        self.doc, self.issues, self.env, self.max_nodes = doc, issues, env, max_nodes
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: Path_, ancestors: tuple[int, ...]) -> Any:
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _Stop(line, f"more than {self.max_nodes} values once aliases are expanded: refused")
        self.doc.lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in ancestors:
                raise _Stop(line, "recursive alias: a block contains itself")
            ancestors = (*ancestors, id(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, ancestors)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, index), ancestors) for index, item in enumerate(node.value)]
        return self._scalar(node, line)

    def _issue(self, line: int, message: str) -> None:
        self.issues.append(SourceIssue(self.doc.file, line, message))

    def _mapping(self, node: yaml.MappingNode, path: Path_, ancestors: tuple[int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self._issue(key_line, "keys must be plain text")
                continue
            key = str(key_node.value)
            if key in result:
                self._issue(key_line, f"duplicate key '{key}'")
                continue
            if (bad := _control_issue(key, key_line - 1)) is not None:
                self._issue(key_line, bad[1].split(" at column")[0])
                continue
            child = (*path, key)
            self.doc.lines[child] = key_line
            result[key] = self.convert(value_node, child, ancestors)
        return result

    def _scalar(self, node: yaml.Node, line: int) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            self._issue(line, f"'{str(node.value)[:40]}' is not a valid value: {reason}")
            return None
        if not isinstance(value, str):
            return value
        found = _CONTROL.search(value)
        if found is not None:  # written as an escape ("\0", "\a") in quoted text
            self._issue(line, f"control character {_char(found.group())} is not allowed")
            return value
        if self.env is not None and "${" in value:
            value = _substitute(value, line, self.doc.file, self.issues, self.env)
        return value


def _substitute(value: str, line: int, file: str, issues: list[SourceIssue], env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        issues.append(SourceIssue(file, line, f"environment variable {name} is not set"))
        return ""

    return _ENV_REF.sub(replace, value)
