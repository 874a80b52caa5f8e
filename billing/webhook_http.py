"""Where a webhook may go, and the one POST that takes it there.

A webhook URL is typed by a tenant, and the portal's worker then calls it: without a guard that is a
server-side request forgery (the metadata service at 169.254.169.254, the database on 10.x, the
admin on localhost). So a URL must be ``https``, carry no credentials, and its host must resolve to
public addresses only; ``http`` and loopback addresses are allowed only when
``settings.WEBHOOK_ALLOW_LOOPBACK`` is on (DEBUG and the tests). The check runs when an endpoint is
saved and again on every delivery, and the delivery connects to the very address that was checked
(no second lookup a DNS rebinding could answer differently). Redirects are not followed.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

RESPONSE_EXCERPT = 1000


def _loopback_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_LOOPBACK", False))


def _refusal(address) -> str | None:
    """Why ``address`` (an ip_address) may not receive webhooks, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if _loopback_allowed() else _("a loopback address")
    if address.is_link_local:
        return _("a link-local address")
    if address.is_private or address.is_reserved or address.is_multicast or address.is_unspecified:
        return _("a private or reserved address")
    if not address.is_global:
        return _("a private or reserved address")
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``, one of the host's checked addresses) and what to ask."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def webhook_url_check(url: str) -> Target:
    """Check ``url`` as a webhook destination and resolve it. Returns the checked ``Target``.

    Raises ValidationError with a message for people: not https (http only to loopback when allowed),
    credentials in the URL, no host, a host that does not resolve, or one that resolves to any
    loopback (unless allowed), private, link-local or reserved address.
    """
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        raise ValidationError(_("Enter a valid URL."), code="invalid") from None
    if parts.scheme not in ("https", "http"):
        raise ValidationError(_("The URL must start with https://."), code="scheme")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(_("The URL must not contain a user name or password."), code="credentials")
    host = parts.hostname
    if not host:
        raise ValidationError(_("The URL has no host."), code="invalid")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValidationError(_("The host %(host)s cannot be resolved.") % {"host": host}, code="unresolvable") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        reason = _refusal(address)
        if reason is not None:
            raise ValidationError(
                _("The host %(host)s resolves to %(reason)s; webhooks go to public addresses only.")
                % {"host": host, "reason": reason},
                code="address",
            )
        addresses.append(address)
    if parts.scheme == "http" and not (_loopback_allowed() and all(a.is_loopback for a in addresses)):
        raise ValidationError(_("The URL must start with https://."), code="scheme")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=str(addresses[0]))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    latency_ms: int
    error: str
    excerpt: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _cut(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    # Shut the socket down under a read or write that is still waiting: it fails at once.
    expired.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def webhook_post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    """POST ``body`` to ``url`` (checked again now, see the module) and read the answer, all within
    ``timeout`` seconds: a receiver that trickles its answer a byte at a time is cut off then too.
    Never raises: a refused URL, a network error or a timeout is the result's ``error``. The response
    body is read only up to ``RESPONSE_EXCERPT`` bytes."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = webhook_url_check(url)
    except ValidationError as exc:
        return PostResult(None, elapsed(), " ".join(exc.messages), "")
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    expired = threading.Event()
    watchdog = threading.Timer(timeout, _cut, (connection, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(RESPONSE_EXCERPT).decode("utf-8", "replace")
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout:g} s")
        return PostResult(response.status, elapsed(), "", excerpt)
    except (OSError, http.client.HTTPException) as exc:
        # The socket's own timeout and the watchdog have the same length; whichever fires first,
        # the receiver did not answer in time (one message, not a race between two).
        if expired.is_set() or isinstance(exc, TimeoutError):
            exc = TimeoutError(f"no complete answer within {timeout:g} s")
        return PostResult(None, elapsed(), (f"{type(exc).__name__}: {exc}")[:500], "")
    finally:
        watchdog.cancel()
        connection.close()
