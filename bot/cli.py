"""The `chatbook` command line: serve, db upgrade, config check (and faq, from the faq package)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bot.bootstrap import bootstrap
from bot.web import build_app
from core.config import AppConfig, ConfigError, load_config

log = logging.getLogger("chatbook")
DEFAULT_CONFIG = os.environ.get("CHATBOOK_CONFIG", "config.yaml")


def _load(path: str) -> AppConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"chatbook: {path} has {len(exc.issues)} problem(s); nothing was started:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return None


async def _serve(config: AppConfig, host: str, port: int, demo: bool = False) -> None:
    services = await bootstrap(config)
    if demo:
        from bot.demo import seed_demo

        made = await seed_demo(services)
        print(f"demo data: {made} bookings added" if made else "demo data: already there", flush=True)
    runner = web.AppRunner(build_app(services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0] if runner.addresses else (host, port)
    base = f"http://{bound[0]}:{bound[1]}"
    print("chatbook is running", flush=True)
    print(f"  shops:        {', '.join(config.shops)}")
    print(f"  API:          {base}/api/shops")
    for shop_id, shop in config.shops.items():
        service_id = next(iter(shop.services))
        print(f"  availability: {base}/api/shops/{shop_id}/availability?service={service_id}&date=YYYY-MM-DD")
    print(f"  health:       {base}/healthz")
    print(f"  database:     {services.db.url.render_as_string(hide_password=True)}")
    print("Press Ctrl+C to stop.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await services.close()


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    asyncio.run(_serve(config, host, port, demo=args.demo))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2

    async def run() -> None:
        services = await bootstrap(config)
        await services.close()

    asyncio.run(run())
    print("database is up to date")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    for shop_id, shop in config.shops.items():
        print(
            f"{args.config}: shop {shop_id}: {len(shop.services)} services, {len(shop.staff)} staff, "
            f"{len(shop.resources)} resources, time zone {shop.timezone}"
        )
    print(f"{args.config}: OK")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbook", description="Chat-first booking server for small shops.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (migrates the database first)")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    serve.add_argument("--host", help="address to listen on (default: server.host from the config)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port from the config)")
    serve.add_argument("--demo", action="store_true", help="add demo customers and bookings to an empty database")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("--config", default=DEFAULT_CONFIG)
    up.set_defaults(func=cmd_db_upgrade)

    config = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate config.yaml and report every problem with its line")
    check.add_argument("--config", default=DEFAULT_CONFIG)
    check.set_defaults(func=cmd_config_check)

    try:
        from faq.cli import add_faq_commands
    except ImportError:  # the faq package is optional at this layer
        pass
    else:
        add_faq_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if getattr(args, "config", None) and not Path(args.config).exists() and args.command != "faq":
        print(f"chatbook: config file {args.config} not found", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
