"""The rules: which URLs and which addresses an outbound request may use.

Addresses are judged after unwrapping the IPv6 forms that carry an IPv4 address
(IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002:aabb:ccdd::``,
NAT64 ``64:ff9b::a.b.c.d``): those reach the IPv4 host, so they get its verdict.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class URLRefused(ValueError):
    """An outbound URL or address is not allowed; ``reason`` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _nets(
    *pairs: tuple[str, str],
) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    return [(ipaddress.ip_network(net), reason) for net, reason in pairs]


#: Cloud instance metadata services: never reachable, whatever ``allow_private`` says
#: (AWS/GCP/Azure/OCI/OpenStack, AWS over IPv6, ECS task credentials, Alibaba, Azure's
#: WireServer, Oracle Cloud Classic).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
    )
)
#: Their well-known names (compared lower-case, without a trailing dot).
METADATA_NAMES = frozenset(
    (
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    )
)

#: Admitted only with ``allow_private`` (an operator's own LAN, loopback or tailnet service).
PRIVATE_NETWORKS = _nets(
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
    ("fc00::/7", "a private (unique local) address"),
)

#: Never admitted. Spelled out rather than trusting ``ipaddress.is_global`` alone, whose
#: tables differ between Python versions (it is still checked as a last resort).
REFUSED_NETWORKS = _nets(
    ("0.0.0.0/8", "an unspecified address"),
    ("::/128", "an unspecified address"),
    ("169.254.0.0/16", "a link-local address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.0.0.0/24", "a reserved address"),
    ("192.88.99.0/24", "a reserved address"),
    ("240.0.0.0/4", "a reserved address"),  # includes 255.255.255.255
    ("100::/64", "a reserved address"),
    ("2001::/23", "a reserved address"),  # Teredo, benchmarking, ORCHID, ...
    ("64:ff9b:1::/48", "a reserved address"),
    ("5f00::/16", "a reserved address"),
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form reaches, if it is one."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``ip`` may not be connected to (e.g. ``"a loopback address"``), or None."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return address_refusal(inner, allow_private=allow_private)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for net, reason in PRIVATE_NETWORKS:
        if ip.version == net.version and ip in net:
            return None if allow_private else reason
    for net, reason in REFUSED_NETWORKS:
        if ip.version == net.version and ip in net:
            return reason
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "not a public address"
    return None


# A host name: LDH labels (underscore tolerated: it occurs in real names), optional final dot.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
    r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$"
)
# WHATWG: a host whose last label is a number is an IPv4 address (in some notation).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def _literal_ip(host: str) -> IPAddress | None:
    """The address ``host`` spells, if it is an IP literal (raises for odd notations)."""
    if ":" in host:
        try:
            ip6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise URLRefused("an invalid IPv6 address") from None
        if ip6.scope_id:  # "fe80::1%eth0": the zone picks an interface, refuse it
            raise URLRefused("an IPv6 address with a zone id")
        return ip6
    if not _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        return None
    # Decimal, octal, hex and short forms (2130706433, 0177.0.0.1, 0x7f.1, 127.1) are all
    # 127.0.0.1 to the C resolver; only the plain dotted quad is accepted.
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        raise URLRefused("an IP address in a non-standard notation") from None
    return ip


def host_refusal(host: str, *, allow_private: bool = False) -> str | None:
    """Name-based refusals that need no resolution: localhost names (RFC 6761: always
    loopback, so admitted with ``allow_private`` like 127.0.0.1) and metadata names."""
    name = host.lower().rstrip(".")
    if (name == "localhost" or name.endswith(".localhost")) and not allow_private:
        return "a localhost name"
    if name in METADATA_NAMES:
        return "a cloud metadata name"
    return None


def check_url(
    url: str | httpx.URL, *, allow_http: bool = False, allow_private: bool = False
) -> httpx.URL:
    """Static checks of ``url`` (a string or ``httpx.URL``); returns the parsed ``httpx.URL``.

    http(s) only (https unless ``allow_http``), no user info, a host that is a plain name
    or IP literal, a port in range, no whitespace, NUL or backslash.  An IP literal is
    judged here; names are judged by :func:`resolve` at connection time.
    """
    raw = str(url)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in raw):
        raise URLRefused("whitespace, control characters or backslashes in the URL")
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(raw)
    except (httpx.InvalidURL, ValueError):
        raise URLRefused("an invalid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise URLRefused("only http and https URLs are allowed")
    if parsed.scheme == "http" and not allow_http:
        raise URLRefused("only https URLs are allowed")
    if parsed.userinfo:
        raise URLRefused("user info in the URL")
    host = parsed.raw_host.decode("ascii", "replace").lower()
    if not host:
        raise URLRefused("no host in the URL")
    port = parsed.port
    if port is not None and not 0 < port < 65536:
        raise URLRefused("a port out of range")
    ip = _literal_ip(host)
    if ip is not None:
        reason = address_refusal(ip, allow_private=allow_private)
        if reason:
            raise URLRefused(f"the host is {reason}")
        return parsed
    if not _HOSTNAME.match(host):
        raise URLRefused("an invalid host name")
    reason = host_refusal(host, allow_private=allow_private)
    if reason:
        raise URLRefused(f"the host is {reason}")
    return parsed


def resolve(host: str, port: int, *, allow_private: bool = False) -> list[str]:
    """The addresses to connect to for ``host``, all of them checked.

    Refused when ANY address the name resolves to is refused: a name that answers with a
    public and a private address is a rebinding attempt, not a load balancer.
    """
    host = host.lower().strip("[]")
    if not host.isascii():  # resolve exactly what is connected to: the IDNA (xn--) form
        raise URLRefused("a host name that is not in its ASCII (IDNA) form")
    ip = _literal_ip(host)
    if ip is None:
        reason = host_refusal(host, allow_private=allow_private)
        if reason:
            raise URLRefused(f"the host is {reason}")
        try:
            infos = socket.getaddrinfo(host.rstrip("."), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise URLRefused("the host name does not resolve") from None
        # Drop IPv6 zone ids ("fe80::1%eth0"): the address decides.
        found = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if not found:
            raise URLRefused("the host name does not resolve")
        addresses = [ipaddress.ip_address(a) for a in found]
    else:
        addresses = [ip]
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            raise URLRefused(f"the host resolves to {reason}")
    return [str(a) for a in addresses]
