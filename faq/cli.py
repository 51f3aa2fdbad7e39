"""Command line for FAQ files: `faq check DIR` and `faq match --faq-dir DIR [TEXT]`.

Owns the CLI contract only. `add_faq_commands(subparsers)` plugs both commands into the
`chatbook` parser (each sets `func(args) -> int`); `main()` runs them standalone as
`python -m faq.cli ...`. Works on any FAQ directory, whether or not its shops are in a
config file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from faq.loader import load_faq
from faq.matcher import FaqMatcher, MatchResult
from faq.model import Faq, FaqError
from faq.placeholders import ShopFacts, fact_problems, facts_from_config


def _faq_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
    )


def _routes(value: str | None) -> list[str] | None:
    return None if value is None else [r.strip() for r in value.split(",") if r.strip()]


def load_directory(
    directory: Path, known_routes: Sequence[str] | None = None
) -> tuple[dict[str, Faq], list[FaqError]]:
    """Every valid FAQ in `directory` by shop, and every problem (incl. duplicate shops)."""
    faqs: dict[str, Faq] = {}
    errors: list[FaqError] = []
    for path in _faq_files(directory):
        result = load_faq(path, known_routes)
        if isinstance(result, list):
            errors.extend(result)
        elif result.shop in faqs:
            first = faqs[result.shop].source
            errors.append(FaqError(str(path), 1, f"shop '{result.shop}' is already served "
                                                 f"by {first}; one file per shop"))
        else:
            faqs[result.shop] = result
    return faqs, errors


def _shop_facts(config_path: str | None) -> tuple[dict[str, ShopFacts], list[str]]:
    """Facts per shop from config.yaml (`--config`, default ./config.yaml when present)."""
    path = Path(config_path) if config_path else Path("config.yaml")
    if not path.is_file():
        return {}, ([f"{path}: no such config file"] if config_path else [])
    from core.config import ConfigError, load_config  # only `faq check` needs the config

    try:
        config = load_config(path)
    except ConfigError as exc:
        return {}, [str(issue) for issue in exc.issues]
    except Exception as exc:
        return {}, [f"{path}:1: cannot load config: {exc}"]
    return {shop_id: facts_from_config(shop) for shop_id, shop in config.shops.items()}, []


def fact_errors(faq: Faq, facts: ShopFacts) -> list[FaqError]:
    """Answers that copy facts config knows (address, phone, prices) or name unknown prices."""
    file = str(faq.source) if faq.source else "<faq>"
    errors = []
    for entry in faq.entries:
        for language in ("zh", "en"):
            text = getattr(entry.answer, language)
            line = faq.lines.get(f"{entry.id}:answer.{language}") or faq.lines.get(entry.id, 1)
            for problem in fact_problems(text, facts):
                errors.append(FaqError(file, line, f"entry '{entry.id}': answer.{language} {problem}"))
    return errors


def cmd_check(args: argparse.Namespace) -> int:
    """`faq check DIR`: print `FILE:LINE: reason` to stderr and return 1 on any problem."""
    directory = Path(args.dir)
    if not directory.is_dir():
        print(f"{directory}: not a directory", file=sys.stderr)
        return 1
    if not _faq_files(directory):
        print(f"{directory}: no *.yaml FAQ files", file=sys.stderr)
        return 1
    faqs, errors = load_directory(directory, _routes(args.routes))
    facts, config_problems = _shop_facts(args.config)
    for problem in config_problems:
        print(problem, file=sys.stderr)
    for faq in faqs.values():
        if faq.shop in facts:
            errors.extend(fact_errors(faq, facts[faq.shop]))
    for error in errors:
        print(error, file=sys.stderr)
    bad_files = {e.file for e in errors}
    for faq in faqs.values():
        if str(faq.source) not in bad_files:
            print(f"{faq.source}: OK (shop {faq.shop}, {len(faq.entries)} entries)")
    return 1 if errors or config_problems else 0


def best_match(matchers: Sequence[FaqMatcher], text: str) -> MatchResult:
    """The best result across several shops' matchers (confident answers first)."""
    rank = {"answer": 2, "suggest": 1, "none": 0}
    results = [m.match(text) for m in matchers]
    return max(results, key=lambda r: (rank[r.decision], r.score))


def _print_result(result: MatchResult, out: TextIO) -> None:
    record = {"id": result.entry_id if result.decision == "answer" else None,
              "score": result.score,
              "candidates": [c.id for c in result.candidates[:3]]}
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


def cmd_match(args: argparse.Namespace) -> int:
    """`faq match`: one JSON object per question, `{"id": ..., "score": ..., "candidates": [...]}`."""
    directory = Path(args.faq_dir)
    if not directory.is_dir():
        print(f"{directory}: not a directory", file=sys.stderr)
        return 2
    faqs, errors = load_directory(directory, _routes(args.routes))
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)
    if args.shop is not None:
        if args.shop not in faqs:
            print(f"no valid FAQ for shop '{args.shop}' in {directory} "
                  f"(shops: {', '.join(sorted(faqs)) or 'none'})", file=sys.stderr)
            return 2
        faqs = {args.shop: faqs[args.shop]}
    if not faqs:
        print(f"{directory}: no valid FAQ file", file=sys.stderr)
        return 2
    matchers = [FaqMatcher(faq) for faq in faqs.values()]
    if args.text:
        _print_result(best_match(matchers, " ".join(args.text)), sys.stdout)
        return 0
    for line in sys.stdin:
        _print_result(best_match(matchers, line.strip()), sys.stdout)
    return 0


def add_faq_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Register `faq check` and `faq match` on a parser's subcommands; returns the `faq`
    subcommands so that the server's CLI can add commands that need its database."""
    faq = subparsers.add_parser("faq", help="check FAQ files and try questions against them")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = faq.add_subparsers(
        dest="faq_command", required=True)
    routes_help = "comma-separated known routes (default: front_desk,groomer,optometrist)"

    check = sub.add_parser("check", help="validate every FAQ file in DIR (FILE:LINE: reason)")
    check.add_argument("dir", metavar="DIR", help="directory holding one *.yaml per shop")
    check.add_argument("--routes", help=routes_help)
    check.add_argument("--config", metavar="FILE",
                       help="config.yaml to check answers against (default: ./config.yaml if present): "
                            "answers must use {address}/{phone}/{price:ID} instead of copying them")
    check.set_defaults(func=cmd_check)

    match = sub.add_parser(
        "match",
        help='print {"id": ..., "score": ..., "candidates": [...]} for TEXT, or for each stdin line',
    )
    match.add_argument("--faq-dir", required=True, metavar="DIR")
    match.add_argument("--shop", help="only this shop (default: best across all shops)")
    match.add_argument("--routes", help=routes_help)
    match.add_argument("text", nargs="*", metavar="TEXT",
                       help="the question (omit to read one question per line from stdin)")
    match.set_defaults(func=cmd_match)
    return sub


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: `python -m faq.cli faq check DIR` or `... check DIR`."""
    parser = argparse.ArgumentParser(prog="faq", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_faq_commands(sub)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] != "faq":
        arguments.insert(0, "faq")  # `python -m faq.cli check DIR` works too
    args = parser.parse_args(arguments)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
