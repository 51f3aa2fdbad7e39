"""What the original request looked like when a trusted reverse proxy sits in front.

Only when the direct peer is one of ``server.trusted_proxies`` are X-Forwarded-Proto and
X-Forwarded-For believed: the scheme is the nearest proxy's (rightmost) value, and the client
is the rightmost X-Forwarded-For address that is not itself a trusted proxy. From any other peer
the headers are ignored, so nobody can claim HTTPS or another address by sending them.
"""

from __future__ import annotations

import contextlib
import ipaddress
from functools import cache

from aiohttp import web

from bot.api import SERVICES_KEY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _parse(networks: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def behind_proxy(request: web.Request) -> web.Request:
    """The request with scheme and remote address as the client used them (or unchanged)."""
    services = request.app.get(SERVICES_KEY)
    if services is None:
        return request
    networks = _parse(tuple(services.config.server.trusted_proxies))
    if not _trusted(request.remote, networks):
        return request
    changes: dict[str, str] = {}
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        changes["scheme"] = proto
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if _trusted(hop, networks):
            continue
        with contextlib.suppress(ValueError):  # garbage: keep the proxy's own address
            changes["remote"] = str(ipaddress.ip_address(hop))
        break
    return request.clone(**changes) if changes else request  # type: ignore[arg-type]  # only str args (scheme, remote)
