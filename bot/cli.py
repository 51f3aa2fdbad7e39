"""The `chatbook` command line: serve, db upgrade, config check, staff tools (handoff, bookings,
time off, notices, calls, reports...) and faq (from the faq package).

Staff commands call the same use cases as the console (bot/usecases/) and print their outcome;
no SQL here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.bootstrap import Services, bootstrap
from bot.engine.store import ConversationState
from bot.scheduler import start_scheduler
from bot.web import build_app
from core import faq_log
from core.config import AppConfig, ConfigError, load_config
from faq.cli import add_faq_commands

log = logging.getLogger("chatbook")
DEFAULT_CONFIG = os.environ.get("CHATBOOK_CONFIG", "config.yaml")
SHUTDOWN_GRACE_SECONDS = float(os.environ.get("CHATBOOK_SHUTDOWN_GRACE", "10"))
DEMO_LOGIN = ("demo", "chatbook-demo")  # only created by --demo, for trying the console locally


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

        made = await seed_demo(services, login=DEMO_LOGIN)
        print(f"demo data: {made} bookings added" if made else "demo data: already there", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before anything answers: a SIGTERM is always graceful
        loop.add_signal_handler(sig, stop.set)
    await services.start_workers()  # takes over what a stopped process left, then the inbox and delivery loops
    runner = web.AppRunner(build_app(services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0] if runner.addresses else (host, port)
    base = f"http://{bound[0]}:{bound[1]}"
    print("chatbook is running", flush=True)
    print(f"  shops:        {', '.join(config.shops)}")
    print(f"  console:      {base}/console")
    for shop_id in config.shops:
        print(f"  widget:       {base}/widget/{shop_id}")
    print(f"  API:          {base}/api/shops")
    print(f"  health:       {base}/healthz")
    if demo:
        print(f"  demo login:   {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}  (admin of every shop)")
    print(f"  database:     {services.db.url.render_as_string(hide_password=True)}")
    print("Press Ctrl+C to stop.", flush=True)
    scheduler = start_scheduler(services)
    try:
        await stop.wait()
    finally:
        # SIGTERM: no new requests (the listener closes; Telegram/WeChat retry elsewhere), polled
        # updates still go into the inbox, the messages in hand finish within the grace period
        # and their replies are sent; the rest stays in the database for the next process.
        scheduler.shutdown(wait=False)
        await runner.cleanup()
        await services.stop_workers(grace=SHUTDOWN_GRACE_SECONDS)
        await services.close()


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    asyncio.run(_serve(config, host, port, demo=args.demo))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The backlogs /metrics shows: inbox and outbox rows waiting, reminders due, oldest ages."""
    from bot.metrics import format_backlog, read_backlog

    async def work(services: Services) -> int:
        now = services.clock.now()
        lines = await read_backlog(services.db, services.outbox, now)
        print(format_backlog(lines, now))
        return 0

    return _with_services(args, work)


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


def _known_shop(services: Services, shop_id: str) -> Any:
    """The shop's config, or None after telling the user which shops there are."""
    shop = services.config.shop(shop_id)
    if shop is None:
        print(f"chatbook: unknown shop '{shop_id}' (have: {', '.join(services.config.shops)})", file=sys.stderr)
    return shop


def _with_services(args: argparse.Namespace, work: Any) -> int:
    """Run ``work(services)`` against the configured database; returns its exit code."""
    config = _load(args.config)
    if config is None:
        return 2

    async def run() -> int:
        services = await bootstrap(config)
        try:
            return int(await work(services) or 0)
        finally:
            await services.close()

    return asyncio.run(run())


def cmd_chat(args: argparse.Namespace) -> int:
    from channels.terminal import run_terminal_chat

    async def work(services: Services) -> int:
        shop = _known_shop(services, args.shop)
        if shop is None:
            return 2
        title = shop.name.get(args.lang or shop.default_language)
        await run_terminal_chat(
            services.engine, services.store, args.shop, title, user=args.as_name, language=args.lang
        )
        return 0

    return _with_services(args, work)


def cmd_handoff_list(args: argparse.Namespace) -> int:
    from bot.usecases import handoff

    async def work(services: Services) -> int:
        items = await handoff.waiting(services, args.shop)
        if not items:
            print("no conversations are waiting for staff")
            return 0
        now = services.clock.now()
        for item in items:
            shop = services.config.shops[item.shop_id]
            since = item.since.astimezone(shop.tz).strftime("%m-%d %H:%M") if item.since else "-"
            waited = handoff.waited_min(item.since, now) or 0
            taken = f" taken by {item.assigned_to}" if item.assigned_to else ""
            print(
                f"#{item.conversation_id}  {item.shop_id}  {item.channel}  route={item.route or '-'}  "
                f"reason={item.reason or '-'}  since {since} ({waited} min){taken}\n"
                f"    last message: {item.last_text[:120]}"
            )
        return 0

    return _with_services(args, work)


def cmd_handoff_reply(args: argparse.Namespace) -> int:
    from bot.usecases import handoff
    from core.messages import OutgoingMessage

    async def work(services: Services) -> int:
        conv = await _conversation(services, args.conversation)
        if conv is None:
            return 1
        sent = await handoff.reply(services, conv, handoff.Staff(args.staff), OutgoingMessage(args.text))
        if isinstance(sent, handoff.Taken):  # the console's guard: one person answers a chat
            print(f"chatbook: #{conv.id} is taken by {sent.by}; nothing was sent", file=sys.stderr)
            return 1
        print(
            f"queued for #{conv.id} ({conv.channel}); the bot stays silent until `chatbook handoff release {conv.id}`"
        )
        return 0

    return _with_services(args, work)


def cmd_handoff_release(args: argparse.Namespace) -> int:
    from bot.usecases import handoff

    async def work(services: Services) -> int:
        conv = await _conversation(services, args.conversation)
        if conv is None:
            return 1
        await handoff.release(services, conv)
        print(f"#{conv.id} is back with the bot")
        return 0

    return _with_services(args, work)


async def _conversation(services: Services, conversation_id: int) -> ConversationState | None:
    from bot.usecases import handoff

    conv = await handoff.find(services, conversation_id)
    if conv is None:
        print(f"chatbook: no conversation #{conversation_id}", file=sys.stderr)
    return conv


def cmd_faq_unanswered(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        if _known_shop(services, args.shop) is None:
            return 2
        rows = await faq_log.unanswered(services.db, args.shop, limit=args.limit)
        if not rows:
            print(f"{args.shop}: no unanswered questions yet")
        for text, count in rows:
            print(f"{count:5d}  {text}")
        return 0

    return _with_services(args, work)


def cmd_channels_check(args: argparse.Namespace) -> int:
    """Per shop: which channels are configured and whether their credentials work."""
    from bot.wiring import channel_modules

    config = _load(args.config)
    if config is None:
        return 2

    async def run() -> int:
        modules = {name: module for name, module, _ in channel_modules()}
        problems = 0
        for shop_id, shop in config.shops.items():
            print(f"{shop_id}:")
            for name in ("telegram", "wechat", "web", "wecom"):
                settings = getattr(shop.channels, name)
                if settings is None or not getattr(settings, "enabled", True):
                    print(f"  {name:9s} not configured")
                    continue
                module = modules.get(name)
                check = getattr(module, "check", None) if module else None
                if check is None:
                    print(f"  {name:9s} configured" + ("" if module else " (channel not installed)"))
                    continue
                ok, reason = await check(shop_id, settings)
                problems += not ok
                print(f"  {name:9s} {'OK' if ok else 'FAILED'}: {reason}")
        return 1 if problems else 0

    return asyncio.run(run())


def cmd_booking_mark(args: argparse.Namespace) -> int:
    from bot.usecases import booking_actions
    from core.results import Actor, Booked

    async def work(services: Services) -> int:
        booking = await booking_actions.find_by_code(services, args.shop, args.code)
        if booking is None:
            print(f"chatbook: no booking {args.code} at {args.shop}", file=sys.stderr)
            return 1
        actor = Actor.staff(args.staff)
        result = await booking_actions.mark_attendance(services, args.shop, booking.id, args.outcome, actor)
        if not isinstance(result, Booked):
            print(f"chatbook: {args.code}: {getattr(result, 'detail', '') or result}", file=sys.stderr)
            return 1
        print(f"{args.code}: {args.outcome.replace('_', '-')} recorded ({result.booking.status.value})")
        return 0

    return _with_services(args, work)


def cmd_report(args: argparse.Namespace) -> int:
    from bot.usecases import reports

    async def work(services: Services) -> int:
        shop = _known_shop(services, args.shop)
        if shop is None:
            return 2
        if args.csv:
            return await _report_csv(services, args, shop)
        rows = await reports.monthly(services, args.shop)
        print("month    booked  done no-show cancel no-show rate confirmed")
        for r in rows:
            rate = f"{r.no_show_rate:.0%}" if r.no_show_rate is not None else "-"
            conf = f"{r.confirmation_rate:.0%}" if r.confirmation_rate is not None else "-"
            print(f"{r.month:8s} {r.booked:6d} {r.completed:5d} {r.no_show:7d} {r.cancelled:6d} {rate:>12s} {conf:>9s}")
        return 0

    return _with_services(args, work)


async def _report_csv(services: Services, args: argparse.Namespace, shop: Any) -> int:
    """`chatbook report --csv`: the console's Reports figures (core/reports.py) as CSV on stdout."""
    from datetime import date, timedelta

    from bot.usecases import Refused, reports
    from core.reports import MAX_PERIODS, to_csv

    try:
        last = date.fromisoformat(args.to) if args.to else services.clock.now().astimezone(shop.tz).date()
        first = date.fromisoformat(args.since) if args.since else last - timedelta(days=29)
    except ValueError:
        print("chatbook: --from and --to are dates like 2026-11-01", file=sys.stderr)
        return 2
    try:
        report = await reports.figures(services, args.shop, args.by, first, last)
    except Refused:
        print(f"chatbook: --from must not be after --to, and at most {MAX_PERIODS} periods", file=sys.stderr)
        return 2
    sys.stdout.write(to_csv([report]))
    return 0


def _local_moment(text: str, shop: Any, *, end_of_day: bool = False) -> Any:
    """'2026-11-23 14:00' or '2026-11-23' (a whole day) in the shop's zone -> UTC."""
    from datetime import date, datetime, timedelta

    from core.availability import to_utc

    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return to_utc(day + timedelta(days=1), 0, shop.tz) if end_of_day else to_utc(day, 0, shop.tz)
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        raise SystemExit(f"chatbook: '{text}' is not a time like 2026-11-23 14:00 or a date like 2026-11-23") from None
    return to_utc(moment.date(), moment.hour * 60 + moment.minute, shop.tz)


def cmd_staff_off(args: argparse.Namespace) -> int:
    from bot.usecases import Refused
    from bot.usecases.time_off import record_time_off
    from core.results import Actor

    async def work(services: Services) -> int:
        shop = services.config.shop(args.shop)
        if shop is None or args.staff not in shop.staff:
            print(f"chatbook: unknown shop or staff member '{args.shop}/{args.staff}'", file=sys.stderr)
            return 2
        start = _local_moment(args.start, shop)
        end = _local_moment(args.end or args.start, shop, end_of_day=True)
        actor, notify = Actor.staff(args.by), not args.no_notify
        try:
            affected = await record_time_off(
                services, args.shop, args.staff, start, end, actor, args.reason, notify_customers=notify
            )
        except Refused as exc:
            print(f"chatbook: --to: {exc.message}", file=sys.stderr)
            return 2
        print(f"{args.staff} is off; {len(affected)} booking(s) affected")
        for booking in affected:
            when = booking.start.astimezone(shop.tz).strftime("%Y-%m-%d %H:%M")
            print(f"  {booking.code}  {when}  {booking.service_id}" + ("" if args.no_notify else "  (customer told)"))
        return 0

    return _with_services(args, work)


def cmd_notice_send(args: argparse.Namespace) -> int:
    """A shop notice to every customer who opted in, in their language, through the outbox."""
    from bot.usecases.notices import send_notice

    async def work(services: Services) -> int:
        if _known_shop(services, args.shop) is None:
            return 2
        done = await send_notice(services, args.shop, args.zh, args.en)
        print(f"{args.shop}: notice queued for {done.sent} customer(s); {done.skipped} without a chat channel")
        return 0

    return _with_services(args, work)


def _with_accounts(args: argparse.Namespace, work: Any) -> int:
    """Run ``work(config, accounts)`` with only the database: staff logins can be managed whatever
    state the FAQ files or channels are in (a broken FAQ must never lock admins out)."""
    from core.clock import SystemClock
    from core.db import Database
    from core.migrate import upgrade
    from core.staff_accounts import StaffAccounts

    config = _load(args.config)
    if config is None:
        return 2

    async def run() -> int:
        db = Database(config.database.url, echo=config.database.echo)
        try:
            await upgrade(db)
            return int(await work(config, StaffAccounts(db, SystemClock())) or 0)
        finally:
            await db.dispose()

    return asyncio.run(run())


def cmd_staff_logout(args: argparse.Namespace) -> int:
    """End every console session of an account (all browsers; open consoles close within seconds)."""
    from bot.usecases.staff_logins import logout_everywhere

    async def work(config: AppConfig, accounts: Any) -> int:
        ended = await logout_everywhere(accounts, args.username)
        if ended is None:
            print(f"chatbook: no console account '{args.username}'", file=sys.stderr)
            return 1
        print(f"{args.username}: {ended} session(s) ended")
        return 0

    return _with_accounts(args, work)


def cmd_staff_add(args: argparse.Namespace) -> int:
    import getpass

    async def work(config: AppConfig, accounts: Any) -> int:
        unknown = [shop for shop in args.shop if shop not in config.shops]
        if unknown:
            print(f"chatbook: unknown shop(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.username}: ")
            if getpass.getpass("again: ") != password:
                print("chatbook: the passwords differ", file=sys.stderr)
                return 1
        try:
            account = await accounts.add(
                args.username,
                password,
                shops=args.shop,
                role=args.role,
                display_name=args.name or args.username,
                language=args.lang,
            )
        except ValueError as exc:
            print(f"chatbook: {exc}", file=sys.stderr)
            return 1
        print(f"{account.username}: {account.role} of {', '.join(account.shops)}")
        return 0

    return _with_accounts(args, work)


def cmd_staff_calls(args: argparse.Namespace) -> int:
    from bot.usecases import staff_calls

    async def work(services: Services) -> int:
        shop = _known_shop(services, args.shop)
        if shop is None:
            return 2
        found = await staff_calls.calls(services, args.shop, overdue_only=not args.all)
        if not found.unanswered and not found.undelivered:
            print("nobody to call")
        for message in found.undelivered:  # every channel failed for good: a person has to call
            text = message.text[:60].replace("\n", " ")
            print(f"undelivered  {message.person.name}  {_phone(message.person)}  ({message.error}): {text}")
        for change in found.unanswered:
            when = change.booking.start.astimezone(shop.tz).strftime("%Y-%m-%d %H:%M")
            print(
                f"{change.booking.code}  {when}  {change.person.name}  {_phone(change.person)}  (asked to answer by "
                f"{change.respond_by.astimezone(shop.tz):%m-%d %H:%M})"
            )
        return 0

    return _with_services(args, work)


def _phone(person: Any) -> str:
    return str(person.phone) if person.phone else "no phone on file"


def cmd_calendar(args: argparse.Namespace) -> int:
    """``calendar feeds`` lists a shop's feed URLs; ``calendar rotate`` gives one feed a new URL (old one 404s)."""
    from core.calendar import SHOP_FEED, CalendarService, absolute

    async def work(services: Services) -> int:
        if _known_shop(services, args.shop) is None:
            return 2
        calendars = CalendarService(services.db, services.config, services.clock)
        if args.calendar_command == "rotate":
            try:
                link = await calendars.rotate(args.shop, args.staff)
            except LookupError as exc:
                print(f"chatbook: {exc}", file=sys.stderr)
                return 2
            who = link.staff_id or "shop"
            print(f"{who}: new URL {absolute(services.config, link.path)} (the old one no longer works)")
            return 0
        for link in await calendars.feeds(args.shop):
            who = "shop" if link.staff_id == SHOP_FEED else f"staff {link.staff_id}"
            print(f"{who:20s} {absolute(services.config, link.path)}")
        if not services.config.server.public_url:
            print("(set server.public_url to print full URLs)", file=sys.stderr)
        return 0

    return _with_services(args, work)


def cmd_customer(args: argparse.Namespace) -> int:
    """``customer export`` prints everything we keep about a person as JSON; ``customer delete``
    removes it (bookings stay, anonymised, for the shop's counts). Both are in the audit trail."""
    import json

    from core.privacy import delete_customer, export_customer, find_customer
    from core.results import Actor

    async def work(services: Services) -> int:
        if _known_shop(services, args.shop) is None:
            return 2
        customer_id = await find_customer(services.db, args.shop, args.customer)
        if customer_id is None:
            print(
                f"chatbook: no customer '{args.customer}' at {args.shop} (give an id, phone or channel:id)",
                file=sys.stderr,
            )
            return 1
        actor, now = Actor.staff(args.by), services.clock.now()
        if args.customer_command == "export":
            doc = await export_customer(services.db, args.shop, customer_id, actor, now)
            text = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
            if args.out:
                await asyncio.to_thread(Path(args.out).write_text, text + "\n", encoding="utf-8")
                print(f"customer {customer_id}: exported to {args.out}", file=sys.stderr)
            else:
                print(text)
            return 0
        if not args.yes:
            print(
                f"chatbook: this deletes customer {customer_id} of {args.shop} and everything about them "
                "(bookings are kept, anonymised). Run again with --yes to do it.",
                file=sys.stderr,
            )
            return 1
        deleted = await delete_customer(services.db, args.shop, customer_id, actor, now)
        print(f"customer {customer_id} deleted: {deleted}")
        return 0

    return _with_services(args, work)


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
    status = sub.add_parser("status", help="backlogs: inbox and outbox rows waiting, reminders due, oldest ages")
    status.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    status.set_defaults(func=cmd_status)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("--config", default=DEFAULT_CONFIG)
    up.set_defaults(func=cmd_db_upgrade)

    config = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate config.yaml and report every problem with its line")
    check.add_argument("--config", default=DEFAULT_CONFIG)
    check.set_defaults(func=cmd_config_check)

    chat = sub.add_parser("chat", help="chat with the engine in this terminal (no tokens needed)")
    chat.add_argument("--config", default=DEFAULT_CONFIG)
    chat.add_argument("--shop", required=True, help="shop id from the config")
    chat.add_argument("--lang", choices=["zh", "en"], help="language to start in")
    chat.add_argument("--as", dest="as_name", metavar="NAME", help="chat as this (returning) customer")
    chat.set_defaults(func=cmd_chat)

    handoff = sub.add_parser("handoff", help="conversations handed to staff").add_subparsers(
        dest="handoff_command", required=True
    )
    listing = handoff.add_parser("list", help="conversations waiting for staff, longest waiting first")
    listing.add_argument("--config", default=DEFAULT_CONFIG)
    listing.add_argument("--shop")
    listing.set_defaults(func=cmd_handoff_list)
    reply = handoff.add_parser("reply", help="reply to a customer as staff (the bot stays silent)")
    reply.add_argument("--config", default=DEFAULT_CONFIG)
    reply.add_argument("--staff", default="staff", help="who is replying (shown in the transcript)")
    reply.add_argument("conversation", type=int)
    reply.add_argument("text")
    reply.set_defaults(func=cmd_handoff_reply)
    release = handoff.add_parser("release", help="hand the conversation back to the bot")
    release.add_argument("--config", default=DEFAULT_CONFIG)
    release.add_argument("conversation", type=int)
    release.set_defaults(func=cmd_handoff_release)

    channels = sub.add_parser("channels", help="channel tools").add_subparsers(dest="channels_command", required=True)
    channels_check = channels.add_parser(
        "check", help="which channels each shop has and whether their credentials work"
    )
    channels_check.add_argument("--config", default=DEFAULT_CONFIG)
    channels_check.set_defaults(func=cmd_channels_check)

    booking = sub.add_parser("booking", help="booking tools for staff").add_subparsers(
        dest="booking_command", required=True
    )
    mark = booking.add_parser("mark", help="record attendance: arrived, completed or no_show")
    mark.add_argument("--config", default=DEFAULT_CONFIG)
    mark.add_argument("--shop", required=True)
    mark.add_argument("--staff", default="staff", help="who records it (audit trail)")
    mark.add_argument("code", help="the booking code the customer was given")
    mark.add_argument("outcome", choices=["arrived", "completed", "no_show"])
    mark.set_defaults(func=cmd_booking_mark)

    staff = sub.add_parser("staff", help="staff tools").add_subparsers(dest="staff_command", required=True)
    off = staff.add_parser("off", help="record time off; affected customers are offered alternatives")
    off.add_argument("--config", default=DEFAULT_CONFIG)
    off.add_argument("--shop", required=True)
    off.add_argument("--staff", required=True, help="staff id from the config")
    off.add_argument("--from", dest="start", required=True, help="'YYYY-MM-DD HH:MM' or a whole day 'YYYY-MM-DD'")
    off.add_argument("--to", dest="end", help="end (default: the end of the --from day)")
    off.add_argument("--reason", default="")
    off.add_argument("--by", default="staff", help="who records it (audit trail)")
    off.add_argument("--no-notify", action="store_true", help="record only; do not message customers")
    off.set_defaults(func=cmd_staff_off)
    add = staff.add_parser("add", help="create a console login (or reset its password and shops)")
    add.add_argument("--config", default=DEFAULT_CONFIG)
    add.add_argument("username")
    add.add_argument("--shop", action="append", required=True, help="a shop they may see (repeat for more)")
    add.add_argument("--role", choices=["staff", "admin"], default="staff")
    add.add_argument("--name", help="name shown to customers when they join a chat")
    add.add_argument("--lang", choices=["zh", "en"], default="zh", help="console language")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=cmd_staff_add)
    logout = staff.add_parser("logout", help="end every console session of an account (all browsers)")
    logout.add_argument("--config", default=DEFAULT_CONFIG)
    logout.add_argument("username")
    logout.set_defaults(func=cmd_staff_logout)
    calls = staff.add_parser(
        "calls", help="customers to phone: unanswered shop-side changes and messages no channel could deliver"
    )
    calls.add_argument("--config", default=DEFAULT_CONFIG)
    calls.add_argument("--shop", required=True)
    calls.add_argument("--all", action="store_true", help="also those whose deadline has not passed")
    calls.set_defaults(func=cmd_staff_calls)

    notice = sub.add_parser("notice", help="shop notices").add_subparsers(dest="notice_command", required=True)
    send = notice.add_parser("send", help="send a notice to every customer who opted in (they can reply 退订/stop)")
    send.add_argument("--config", default=DEFAULT_CONFIG)
    send.add_argument("--shop", required=True)
    send.add_argument("--zh", required=True, help="the notice in Chinese")
    send.add_argument("--en", help="the notice in English (default: the Chinese text)")
    send.set_defaults(func=cmd_notice_send)

    report = sub.add_parser("report", help="no-show and confirmation rates per month")
    report.add_argument("--config", default=DEFAULT_CONFIG)
    report.add_argument("--shop", required=True)
    report.add_argument("--csv", action="store_true", help="every figure of the console's Reports page, as CSV")
    report.add_argument("--by", choices=("day", "week", "month"), default="day", help="with --csv: the period")
    report.add_argument("--from", dest="since", help="with --csv: first local date (default: 30 days back)")
    report.add_argument("--to", help="with --csv: last local date (default: today)")
    report.set_defaults(func=cmd_report)

    calendar = sub.add_parser("calendar", help="calendar feeds (.ics) for phone calendars").add_subparsers(
        dest="calendar_command", required=True
    )
    feeds = calendar.add_parser("feeds", help="the shop's and each staff member's private feed URL")
    feeds.add_argument("--config", default=DEFAULT_CONFIG)
    feeds.add_argument("--shop", required=True)
    feeds.set_defaults(func=cmd_calendar)
    rotate = calendar.add_parser("rotate", help="give a feed a new URL; the old one stops working")
    rotate.add_argument("--config", default=DEFAULT_CONFIG)
    rotate.add_argument("--shop", required=True)
    rotate.add_argument("--staff", default=None, help="a staff member's feed (default: the shop's)")
    rotate.set_defaults(func=cmd_calendar)

    customer = sub.add_parser("customer", help="a customer's data: export it as JSON or delete it").add_subparsers(
        dest="customer_command", required=True
    )
    for name, what in (
        ("export", "print everything we keep about a customer as JSON"),
        ("delete", "delete a customer and everything about them (bookings kept, anonymised)"),
    ):
        command = customer.add_parser(name, help=what)
        command.add_argument("shop")
        command.add_argument("customer", help="customer id, phone number or channel:id (e.g. web:abc)")
        command.add_argument("--config", default=DEFAULT_CONFIG)
        command.add_argument("--by", default="cli", help="who does it, for the audit trail")
        if name == "export":
            command.add_argument("--out", help="write the JSON to this file instead of the screen")
        else:
            command.add_argument("--yes", action="store_true", help="really delete")
        command.set_defaults(func=cmd_customer)

    faq = add_faq_commands(sub)
    unanswered = faq.add_parser("unanswered", help="what customers asked that the FAQ could not answer")
    unanswered.add_argument("--config", default=DEFAULT_CONFIG)
    unanswered.add_argument("--shop", required=True)
    unanswered.add_argument("--limit", type=int, default=50)
    unanswered.set_defaults(func=cmd_faq_unanswered)
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
        logging.getLogger("faq").setLevel(logging.WARNING)
    if getattr(args, "config", None) and not Path(args.config).exists():
        print(f"chatbook: config file {args.config} not found", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
