"""The checklist's DNS check: whether a host name resolves, through the system resolver.
The state vocabulary is the one ``backends.checklist.net`` describes."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from typing import Final

from backends.checklist.net import NetFinding, NetState, finding

__all__ = ["check_dns"]

_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


async def check_dns(hostname: str, *, timeout: float = 3.0) -> NetFinding:
    """Whether ``hostname`` resolves, through the event loop's getaddrinfo (so /etc/hosts,
    nsswitch and the system resolver answer, exactly as they will for the services).

    - pass: it resolves; the evidence lists the first few distinct addresses;
    - fail: the name does not resolve (EAI_NONAME, or EAI_NODATA: exists without an
      address), is not a valid hostname, or lies under ``.invalid``, which RFC 6761 reserves
      to never resolve (answered without asking the resolver);
    - unknown: no answer within ``timeout``, or the resolver itself failed (EAI_AGAIN,
      EAI_FAIL, anything else) — a broken resolver says nothing about the record.

    getaddrinfo runs in the loop's default executor; a call past ``timeout`` is abandoned,
    not killed (the C library gives no way to cancel it), and finishes in its thread.
    """
    started = time.monotonic()
    problem = _hostname_problem(hostname)
    if problem is not None:
        return finding("fail", f"not a valid hostname {hostname!r}: {problem}", started)
    if hostname.rstrip(".").lower().rsplit(".", 1)[-1] == "invalid":
        return finding(
            "fail", f"{hostname} does not resolve (.invalid is reserved, RFC 6761)", started
        )
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        return finding("unknown", f"no answer from the resolver within {timeout:g}s", started)
    except socket.gaierror as exc:
        state, evidence = _resolver_error(hostname, exc)
        return finding(state, evidence, started)
    except UnicodeError as exc:
        return finding("fail", f"not a valid hostname {hostname!r}: {exc}", started)
    except OSError as exc:
        return finding("unknown", f"resolver failed for {hostname}: {exc}", started)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        return finding("fail", f"{hostname} resolves to no address", started)
    shown = ", ".join(addresses[:3])
    more = f" (+{len(addresses) - 3} more)" if len(addresses) > 3 else ""
    return finding("pass", f"{hostname} resolves to {shown}{more}", started)


def _hostname_problem(hostname: str) -> str | None:
    """Why ``hostname`` cannot be a host name, or None. IP literals are accepted (they
    "resolve" to themselves); non-ASCII names are checked in their IDNA form."""
    if not hostname:
        return "empty"
    try:
        ipaddress.ip_address(hostname)
        return None
    except ValueError:
        pass
    ascii_name = hostname
    if not hostname.isascii():
        # Only for non-ASCII names: the codec's own errors ("label empty or too long") are
        # vaguer than the label check below.
        try:
            ascii_name = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            return "not encodable as IDNA"
    name = ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
    if len(name) > 253:
        return "longer than 253 characters"
    bad = next((label for label in name.split(".") if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        return f"bad label {bad!r}" if bad else "empty label"
    return None


def _resolver_error(hostname: str, exc: socket.gaierror) -> tuple[NetState, str]:
    code = exc.errno
    if code == socket.EAI_NONAME:
        return "fail", f"{hostname} does not resolve (no such name)"
    if code == getattr(socket, "EAI_NODATA", None):
        return "fail", f"{hostname} does not resolve (the name has no address records)"
    if code == socket.EAI_AGAIN:
        return "unknown", f"resolver temporarily failed for {hostname} (EAI_AGAIN)"
    return "unknown", f"resolver failed for {hostname}: {exc.strerror or exc}"
