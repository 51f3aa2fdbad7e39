"""Which channel modules this server runs, and their send functions for the delivery loop.

Each channel module under channels/ offers ``register(app, ctx)`` (its routes and start-up
work) and a sender class (its one send function). A module that is not installed is skipped;
one that is installed but broken fails loudly at start.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterator
from types import ModuleType

from channels.base import ChannelContext, ChannelSender

log = logging.getLogger(__name__)

# channel name -> (module, sender class name)
CHANNEL_MODULES: dict[str, tuple[str, str]] = {
    "telegram": ("channels.telegram", "TelegramSender"),
    "wechat": ("channels.wechat", "WeChatSender"),
    "web": ("channels.web", "WebSender"),
    "wecom": ("channels.wecom", "WeComSender"),
}


def channel_modules() -> Iterator[tuple[str, ModuleType, str]]:
    for name, (module_name, sender_name) in CHANNEL_MODULES.items():
        if importlib.util.find_spec(module_name) is None:
            log.debug("channel %s not installed", name)
            continue
        yield name, importlib.import_module(module_name), sender_name


def build_senders(ctx: ChannelContext) -> dict[str, ChannelSender]:
    senders: dict[str, ChannelSender] = {}
    for name, module, sender_name in channel_modules():
        sender_class = getattr(module, sender_name, None)
        if sender_class is not None:
            senders[name] = sender_class(ctx)
    return senders
