"""Per-client limits of the chat widget: a script cannot open sessions, send messages or create
customers without bound.

Token buckets, in memory, per process (each process limits what reaches it; behind a load
balancer the figures add up per process, which still bounds a client): per address, new
sessions, messages and new customers; per session, messages. A refused message is not stored
and not handed to the engine; the customer sees a friendly "too many messages" (core/locales,
``limits.*``) and may send it again later.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rate:
    burst: float
    per_second: float


@dataclass(frozen=True)
class WidgetLimits:
    sessions_per_address: Rate = Rate(burst=20, per_second=20 / 600)  # 20 new chats, then 2/min
    messages_per_address: Rate = Rate(burst=60, per_second=1.0)  # an office behind one NAT
    customers_per_address: Rate = Rate(burst=10, per_second=10 / 3600)  # new customers: 10, then 10/hour
    messages_per_session: Rate = Rate(burst=20, per_second=1.0)  # a person: a burst, then one a second


@dataclass
class Buckets:
    """Token buckets by key, the least recently used forgotten beyond ``max_keys``."""

    rate: Rate
    now: Callable[[], float] = time.monotonic
    max_keys: int = 50_000
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def take(self, key: str) -> bool:
        now = self.now()
        tokens, last = self._buckets.pop(key, (self.rate.burst, now))
        tokens = min(self.rate.burst, tokens + (now - last) * self.rate.per_second)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed


class Limiter:
    def __init__(self, limits: WidgetLimits | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or WidgetLimits()
        self.sessions = Buckets(self.limits.sessions_per_address, now)
        self.address_messages = Buckets(self.limits.messages_per_address, now)
        self.customers = Buckets(self.limits.customers_per_address, now)
        self.session_messages = Buckets(self.limits.messages_per_session, now)

    def new_session(self, address: str) -> bool:
        return self.sessions.take(address)

    def message(self, address: str, session: str, *, new_customer: bool) -> bool:
        """May this message go on? ``new_customer``: it would create the customer (a session's first)."""
        if not self.session_messages.take(session) or not self.address_messages.take(address):
            return False
        return not new_customer or self.customers.take(address)
