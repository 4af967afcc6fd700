"""The ``Host`` allow-list of the UI: the defence against DNS rebinding.

A page on ``http://evil.example:5555`` can make its own name resolve to 127.0.0.1 after it
loaded (DNS rebinding). The browser then treats the UI as *same-origin* with that page: it
sends ``Host: evil.example:5555`` and ``Origin: http://evil.example:5555``, so the Origin check
of the actions passes, and every read (job inputs, tracebacks) is readable by the page. Only
the ``Host`` header gives the name away, so every request, reads included, must name a host
this UI answers to, as Django's ``ALLOWED_HOSTS`` and Starlette's ``TrustedHostMiddleware`` do.

Why not ``TrustedHostMiddleware`` itself: it answers a refusal with a plain-text "Invalid host
header" that neither names the host nor says how to allow it, and redirects to ``www.``
names. The matching rules here are the same (exact names, ``*.example.com``, ``*`` for any).

IP addresses are always accepted: rebinding needs a *name* the attacker controls, and a
browser sends an address as ``Host`` only for a page loaded from that very address (the same
origin as the UI). Accepting them keeps ``--host 0.0.0.0``, Kubernetes probes and Prometheus
scrapes by pod IP working without configuration.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: The names of this machine that no DNS server can hand to an attacker.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Bind addresses that stand for "every interface": no client ever sends them as a Host.
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})

_NAME = re.compile(r"^(\*|(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)$")


def allowed_host_pattern(value: str) -> str:
    """Normalise one allow-list entry: a host name, an address, ``*.example.com`` or ``*``.

    Raises:
        ValueError: a URL, a port or characters a host name cannot have; the message says
            what to give instead.
    """
    pattern = value.strip().lower().rstrip(".")
    if "://" in pattern or "/" in pattern:
        raise ValueError(f"{value!r} is a URL: give the host name only (e.g. conveyor.example.com)")
    address = _address(pattern.strip("[]"))
    if address is not None:
        return str(address)
    if ":" in pattern:
        raise ValueError(f"{value!r} has a port: give the host name only (ports are not checked)")
    if not _NAME.match(pattern):
        raise ValueError(
            f"{value!r} is not a host name: use a name (conveyor.example.com), an address, "
            "'*.example.com' for every subdomain or '*' for any host"
        )
    return pattern


def default_allowed_hosts(bind: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The loopback names, the address the server binds (unless it is a wildcard) and
    ``extra``, normalised and without duplicates, in that order."""
    found = list(LOOPBACK_HOSTS)
    if bind.strip().lower() not in WILDCARD_ADDRESSES:
        found.append(bind)
    found += extra
    return tuple(dict.fromkeys(allowed_host_pattern(host) for host in found))


def host_name(header: str | None) -> str | None:
    """The host of a ``Host`` header without its port and brackets, lower case; ``None``
    when the header is missing or malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        if end < 0 or (header[end + 1 :] and not re.fullmatch(r":\d*", header[end + 1 :])):
            return None
        return header[1:end] or None
    host, _, port = header.partition(":")
    if ":" in port or (port and not port.isdigit()):
        return None
    return host.rstrip(".") or None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` (from :func:`host_name`) matches an entry or is an IP address."""
    if _address(host) is not None:
        return True
    for pattern in patterns:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class HostGuard:
    """ASGI middleware: refuses every HTTP request whose ``Host`` is not on the allow-list
    with a 400 and a JSON ``detail`` naming the host and the setting that allows it."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed_hosts = tuple(allowed_host_pattern(host) for host in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.allowed_hosts:
            await self.app(scope, receive, send)
            return
        raw = Headers(scope=scope).get("host")
        host = host_name(raw)
        if host is not None and host_allowed(host, self.allowed_hosts):
            await self.app(scope, receive, send)
            return
        if host is None:
            detail = f"Invalid or missing Host header ({(raw or '')[:100]!r})"
        else:
            detail = (
                f"Host {host[:100]!r} is not allowed: this UI answers to "
                f"{', '.join(self.allowed_hosts)} and IP addresses (a foreign name is how DNS "
                "rebinding reaches a local server). To serve it under this name, e.g. behind a "
                f"reverse proxy, start it with `conveyor ui --allowed-host {host[:100]}` or "
                "set CONVEYOR_UI_ALLOWED_HOSTS"
            )
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
