"""Where a webhook may go: an http(s) URL of at most URL_MAX characters whose host
resolves to public addresses only. Loopback, private, link-local and other
non-public addresses are refused unless WEBHOOKS_ALLOW_PRIVATE lets them through
(tests, private deployments).

The check runs when an endpoint is registered and again before each attempt, since
DNS may answer differently by then; the attempt then connects to the address that
was checked (:class:`Target`), not to whatever a second look-up would answer.
"""

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from webhooks.models import URL_MAX


class RefusedUrl(ValueError):
    """One sentence saying why the URL is refused."""


@dataclass(frozen=True)
class Target:
    """An attempt's request: the URL (its host replaced by the checked address when
    there was a check), with the headers and httpx extensions that keep the name."""

    url: str
    headers: dict = field(default_factory=dict)
    extensions: dict = field(default_factory=dict)


def url_check(url) -> str:
    """The URL if its shape is acceptable, else :class:`RefusedUrl`."""
    if not isinstance(url, str) or not url:
        raise RefusedUrl("url must be an http or https URL.")
    if len(url) > URL_MAX:
        raise RefusedUrl(f"url is longer than {URL_MAX:,} characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedUrl(f"url must be an http or https URL, not {_short(url)!r}.")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("url must not hold a user name or password.")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        raise RefusedUrl(f"url has a port that is not a number: {_short(url)!r}.") from None
    return url


def target_for(url: str) -> Target:
    """The request to send to ``url``: checked, resolved and pinned to the address
    checked, unless private addresses are allowed (then sent as it is)."""
    url_check(url)
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return Target(url)
    parts = urlsplit(url)
    address = public_address(parts.hostname, parts.port or _default_port(parts.scheme))
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return Target(urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}, extensions)


def public_address(host: str, port: int):
    """The first address ``host`` resolves to, when every one of them is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RefusedUrl(f"url's host {host} does not resolve to an address.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if kind := refused_kind(address):
            raise RefusedUrl(
                f"url's host {host} resolves to {address}, {kind} address; webhooks are "
                "sent to public addresses only."
            )
    return addresses[0]


def refused_kind(address) -> str | None:
    """What kind of non-public address this is ("a private"), or None for a public one."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return refused_kind(mapped)
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_private:
        return "a private"
    if address.is_multicast or not address.is_global:
        return "a reserved"
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _short(url: str) -> str:
    return url if len(url) <= 100 else f"{url[:100]}…"
