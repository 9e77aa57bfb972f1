"""A small HTTP client for smoke checks: cookies, bounded redirects, plain errors.

Built on ``http.client`` rather than ``urllib.request`` for two reasons: a smoke
check must see the answer the site gave (a 500 is a result, not an exception),
and a site behind a TLS proxy sets ``Secure`` cookies that a standard cookie jar
would never send back over the loopback ``http`` the deploy probes.
Every way a request can go wrong becomes a :class:`ProbeError` whose message
says what happened, never a traceback.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urljoin, urlsplit

#: What a TLS-terminating proxy adds; without it a live site answers with a
#: redirect to https, which says nothing about whether the release works.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
MAX_REDIRECTS = 5
BODY_LIMIT = 2 * 1024 * 1024


class ProbeError(Exception):
    """A request that got no usable answer; the message says why."""


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: str
    seconds: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Client:
    """One visitor of ``base_url``: keeps its cookies across requests."""

    base_url: str
    timeout: float = 10.0
    cookies: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if path else self.base_url

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        follow: bool = True,
    ) -> Response:
        """Send one request (following GET redirects up to ``MAX_REDIRECTS``)."""
        url = self.url(path)
        started = time.monotonic()
        seen = [url]
        while True:
            response = self._once(method, url, body, headers or {}, started)
            location = response.header("location")
            if not (follow and location and response.status in (301, 302, 303, 307, 308)):
                return response
            url = urljoin(url, location)
            if url in seen:
                raise ProbeError(f"redirect loop: {' -> '.join([*seen, url])}")
            seen.append(url)
            if len(seen) > MAX_REDIRECTS + 1:
                raise ProbeError(f"more than {MAX_REDIRECTS} redirects, last to {url}")
            method, body = "GET", None

    def _once(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], started: float
    ) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"{url!r} is not an http(s) URL")
        remaining = self.timeout - (time.monotonic() - started)
        if remaining <= 0:
            raise ProbeError(f"no answer within {self.timeout:g} s")
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.netloc, timeout=remaining)
        else:
            connection = http.client.HTTPConnection(parts.netloc, timeout=remaining)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        sent = {**PROXY_HEADERS, **headers}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, target, body=body, headers=sent)
            answer = connection.getresponse()
            raw = answer.read(BODY_LIMIT)
            for value in answer.headers.get_all("Set-Cookie") or []:
                self._keep_cookie(value)
            return Response(
                url=url,
                status=answer.status,
                headers={k.lower(): v for k, v in answer.getheaders()},
                body=raw.decode(errors="replace"),
                seconds=time.monotonic() - started,
            )
        except ssl.SSLCertVerificationError as error:
            raise ProbeError(
                f"TLS certificate of {parts.hostname} not trusted: {error.verify_message}"
            ) from None
        except ssl.SSLError as error:
            raise ProbeError(
                f"TLS error talking to {parts.netloc}: {error.reason or error}"
            ) from None
        except TimeoutError:
            raise ProbeError(f"no answer from {parts.netloc} within {self.timeout:g} s") from None
        except socket.gaierror:
            raise ProbeError(f"cannot resolve the host name {parts.hostname!r}") from None
        except ConnectionRefusedError:
            raise ProbeError(
                f"connection refused by {parts.netloc}: is the server running?"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            reason = str(error) or type(error).__name__
            raise ProbeError(f"no usable answer from {parts.netloc}: {reason}") from None
        finally:
            connection.close()

    def _keep_cookie(self, header: str) -> None:
        try:
            cookie = SimpleCookie(header)
        except CookieError:
            return
        for name, morsel in cookie.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
