"""Requests to URLs that users configure (alert webhooks, webhook subscriptions): never to internal addresses.

A URL is checked when it is saved (`check_target`) and again at every delivery
(`post_json`), on the address the name resolves to *then*: a name that resolved
to a public address at save time and to 127.0.0.1 or 169.254.169.254 later (DNS
rebinding) is refused at delivery, and the request goes to the address that was
checked, not to a second lookup. Refused: loopback, private (RFC 1918, unique
local), link-local (cloud metadata lives there), shared, reserved, multicast and
unspecified addresses, and the metadata host names, unless the host, the address
or its network is listed in `ALERT_ALLOWED_HOSTS`. Redirects are not followed
and proxies from the environment are not used, so neither can lead elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_HOSTS = {
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
}
RESOLVE_TIMEOUT = 2.0  # seconds; getaddrinfo has no timeout of its own
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbound-dns")


class TargetRefused(ValueError):
    """The URL points at an address promptreg does not send to; the message says which and why."""


def _allowed() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names, networks = set(), []
    for entry in settings.ALERT_ALLOWED_HOSTS:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def _internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return not address.is_global or address.is_multicast


def _host(url: str) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"{url!r} is not an http(s) URL with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(f"{url!r} has an invalid port.") from None
    return parts.hostname.lower().rstrip("."), port


def _resolve(host: str, port: int) -> list[IPAddress]:
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=RESOLVE_TIMEOUT)
    except FutureTimeout:
        raise socket.gaierror(f"resolving {host} took longer than {RESOLVE_TIMEOUT:g} s") from None
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def _refuse_internal(host: str, addresses: list[IPAddress]) -> None:
    names, networks = _allowed()
    if host in names:
        return
    if host in METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        raise TargetRefused(f"{host} is an internal host; list it in ALERT_ALLOWED_HOSTS to allow it.")
    for address in addresses:
        if _internal(address) and not any(address in network for network in networks):
            shown = host if host == str(address) else f"{host} ({address})"
            raise TargetRefused(
                f"{shown} is an internal address (loopback, private, link-local or reserved); list it in "
                f"ALERT_ALLOWED_HOSTS to allow it."
            )


def check_target(url: str) -> None:
    """At save time: refuse a URL whose host is internal or resolves to an internal address.

    A name that does not resolve now is accepted (a typo shows at the first delivery,
    which checks again); a literal address or a name that resolves is checked here.
    """
    host, port = _host(url)
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError):
        addresses = []
    _refuse_internal(host, addresses)


def post_json(url: str, payload: Any, *, timeout: float, headers: dict[str, str] | None = None) -> httpx.Response:
    """At delivery: resolve, check every address, and POST to the first one with the original Host and TLS name.

    Raises TargetRefused (not worth retrying), OSError for a name that does not
    resolve, or httpx's errors; the caller decides on retries.
    """
    return _post(url, timeout=timeout, headers=headers, json=payload)


def post_body(url: str, body: bytes, *, timeout: float, headers: dict[str, str] | None = None) -> httpx.Response:
    """`post_json` for a body sent byte for byte as given (one whose signature covers those bytes)."""
    return _post(url, timeout=timeout, headers=headers, content=body)


def _post(url: str, *, timeout: float, headers: dict[str, str] | None, **body: Any) -> httpx.Response:
    host, port = _host(url)
    addresses = _resolve(host, port)
    _refuse_internal(host, addresses)
    target = httpx.URL(url.strip())
    pinned = target.copy_with(host=str(addresses[0]))
    host_header = target.host if target.port is None else f"{target.host}:{target.port}"
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        return client.post(
            pinned,
            **body,
            headers={**(headers or {}), "Host": host_header},
            extensions={"sni_hostname": target.host},
        )
