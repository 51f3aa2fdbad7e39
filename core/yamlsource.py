"""YAML with line numbers and ${ENV} substitution.

Admins edit YAML by hand, so every error we report names the file and the line. This module
parses a document into plain Python data plus a map from each key path (e.g.
``("shops", "pawspa", "services", "bath", "duration_min")``) to the 1-based line where it
appears, and substitutes ``${VAR}`` / ``${VAR:-default}`` in string scalars from the
environment (secrets never live in the file).
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

    def line_of(self, path: Path_) -> int:
        """Line of the longest known prefix of ``path`` (1 when nothing is known)."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return 1


class YamlSourceError(Exception):
    """Raised with every issue found; ``issues`` keeps them for callers that list them."""

    def __init__(self, issues: list[SourceIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def load_yaml(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    text: str | None = None,
) -> YamlDocument:
    """Parse ``path`` (or ``text`` labelled with ``path``) into a YamlDocument.

    Raises YamlSourceError for syntax errors, duplicate keys and unset environment variables.
    """
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise YamlSourceError([SourceIssue(name, 1, f"cannot read file: {exc.strerror}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        reason = exc.problem or exc.context or "invalid YAML"
        raise YamlSourceError([SourceIssue(name, line, f"YAML syntax error: {reason}")]) from exc
    doc = YamlDocument(file=name, data=None)
    issues: list[SourceIssue] = []
    env = os.environ if environ is None else environ
    if node is not None:
        doc.data = _convert(node, (), doc, issues, env)
    if issues:
        raise YamlSourceError(issues)
    return doc


def _convert(
    node: yaml.Node,
    path: Path_,
    doc: YamlDocument,
    issues: list[SourceIssue],
    env: Mapping[str, str],
) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                issues.append(SourceIssue(doc.file, key_node.start_mark.line + 1, "keys must be plain text"))
                continue
            key = str(key_node.value)
            if key in result:
                issues.append(SourceIssue(doc.file, key_node.start_mark.line + 1, f"duplicate key '{key}'"))
                continue
            child = (*path, key)
            doc.lines[child] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, child, doc, issues, env)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), doc, issues, env) for index, item in enumerate(node.value)]
    value = _scalar(node)
    if isinstance(value, str) and "${" in value:
        value = _substitute(value, node.start_mark.line + 1, doc.file, issues, env)
    return value


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


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
