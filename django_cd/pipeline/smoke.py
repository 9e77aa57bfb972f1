"""The post-switch check: does the new release answer?

``check_release`` is the hook the later ``django_cd.smoke`` layer replaces
with the full smoke-test suite; until then it GETs the environment's URL and
wants a 200 carrying the new release id in the ``X-Release`` header (set by
``django_cd.middleware.ReleaseHeaderMiddleware``).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from django_cd.conf import Environment
from django_cd.pipeline.errors import StepFailed

RELEASE_HEADER = "X-Release"
# What a TLS-terminating proxy adds; without it a live site answers with a
# redirect to https, which says nothing about whether the release works.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, the release that served it, the body."""

    status: int
    release: str | None
    body: str


def fetch(url: str, timeout: float = 5.0) -> Answer | None:
    """GET ``url`` once (no redirects followed); None when nothing answers."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.netloc, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers=PROXY_HEADERS)
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        return Answer(response.status, response.getheader(RELEASE_HEADER), body)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def wait_for_release(
    url: str,
    release_id: str,
    timeout: float,
    alive: Callable[[], bool] | None = None,
) -> Answer | None:
    """Poll ``url`` until release ``release_id`` answers; the last answer otherwise."""
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        answer = fetch(url)
        if answer is not None and answer.release == release_id:
            return answer
        if alive is not None and not alive():
            return answer
        time.sleep(POLL_SECONDS)
    return answer


def check_release(env: Environment, url: str, release_id: str, timeout: float = 30.0) -> str:
    """Raise ``StepFailed("smoke")`` unless ``url`` answers 200 from ``release_id``."""
    answer = wait_for_release(url, release_id, timeout)
    if answer is None:
        raise StepFailed("smoke", f"{url} does not answer (waited {timeout:.0f} s).")
    if answer.release != release_id:
        raise StepFailed(
            "smoke",
            f"{url} still answers from release {answer.release or '(no X-Release header)'}, "
            f"not {release_id}. Is django_cd.middleware.ReleaseHeaderMiddleware in MIDDLEWARE?",
        )
    if answer.status != 200:
        raise StepFailed(
            "smoke",
            f"{url} answered {answer.status} from the new release, not 200.",
            answer.body[-2000:],
        )
    for dotted in env.smoke_checks:
        # Extra checks: callables (env, url, release_id) that raise to fail.
        check = import_string(dotted) if isinstance(dotted, str) else dotted
        try:
            check(env, url, release_id)
        except Exception as error:
            raise StepFailed("smoke", f"Smoke check {dotted} failed: {error}") from error
    return f"{url} -> {answer.status} from {release_id}"
