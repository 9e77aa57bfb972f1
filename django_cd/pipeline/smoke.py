"""The post-switch check: does the new release answer?

``check_release`` GETs each of the environment's ``urls`` until the new
release id answers in the ``X-Release`` header (set by
``django_cd.middleware.ReleaseHeaderMiddleware``) with a 200 from every one:
that covers the reload. Then it runs the environment's smoke checks
(``django_cd.smoke``: the defaults, the declared checks, the dotted-path ones).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from django_cd.conf import Environment
from django_cd.pipeline.errors import StepFailed
from django_cd.smoke import SmokeRun, config

if TYPE_CHECKING:
    from django_cd.pipeline.server import AppServer

RELEASE_HEADER = "X-Release"
# What a TLS-terminating proxy adds; without it a live site answers with a
# redirect to https, which says nothing about whether the release works.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
#: Between two polls of a URL, a pid file or a process: fine, since each costs little.
POLL_SECONDS = 0.02
#: Lines of a failed answer's body kept above the server's log lines.
ANSWER_LINES = 8


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, the release that served it, the body."""

    status: int
    release: str | None
    body: str
    location: str | None = None


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
        return Answer(
            response.status,
            response.getheader(RELEASE_HEADER),
            body,
            response.getheader("Location"),
        )
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
    """Raise ``StepFailed("smoke")`` unless ``url`` and every other of the environment's
    ``urls`` answer 200 from ``release_id``; then run the extra smoke checks."""
    urls = [url, *(other for other in env.urls if other != url)]
    deadline = time.monotonic() + timeout
    accepted = config.options(env).url_status
    answers = []
    for each in urls:
        # The first wait covers the reload; the others share what is left of it.
        remaining = max(deadline - time.monotonic(), min(timeout, 5.0))
        answers.append(f"{each} -> {_check_url(each, release_id, remaining, accepted)}")
    report = SmokeRun(env, url, release_id).run()
    if not report.ok:
        raise StepFailed("smoke", report.summary(), "\n".join(report.table()))
    return "; ".join(answers) + f" from {release_id}; {report.summary()}"


def check_serving(env: Environment, url: str, release_id: str, server: AppServer) -> str:
    """``check_release``; when it fails, its output ends with the app server's last log
    lines, since the cause is often there alone (an ``Invalid HTTP_HOST header``, the
    traceback an error page hides)."""
    try:
        return check_release(env, url, release_id)
    except StepFailed as failed:
        log = server.log_tail().strip()
        if log:
            answer = "\n".join(failed.output.strip().splitlines()[-ANSWER_LINES:])
            failed.output = f"{answer}\n--- the last lines of the {server.name} log ---\n{log}"
        raise


def _check_url(
    url: str, release_id: str, timeout: float, accepted: tuple[int, ...] | None = None
) -> int:
    answer = wait_for_release(url, release_id, timeout)
    if answer is None:
        raise StepFailed("smoke", f"{url} does not answer (waited {timeout:.0f} s).")
    if answer.release != release_id:
        raise StepFailed(
            "smoke",
            f"{url} still answers from release {answer.release or '(no X-Release header)'}, "
            f"not {release_id}. Is django_cd.middleware.ReleaseHeaderMiddleware in MIDDLEWARE?",
        )
    problem = _status_problem(url, answer, accepted)
    if problem:
        raise StepFailed("smoke", problem, answer.body[-2000:])
    return answer.status


def _status_problem(url: str, answer: Answer, accepted: tuple[int, ...] | None) -> str | None:
    """Why ``answer`` is not what the environment accepts from ``url`` (None: it is).

    Declared statuses are matched as they are. By default any 2xx passes, and a 3xx
    whose target (followed once) does not answer an error: many home pages redirect
    to a login page.
    """
    if accepted is not None:
        if answer.status in accepted:
            return None
        wanted = ", ".join(map(str, accepted))
        return f"{url} answered {answer.status} from the new release, not {wanted}."
    if 200 <= answer.status < 300:
        return None
    if 300 <= answer.status < 400 and answer.location:
        target = urljoin(url, answer.location)
        followed = fetch(target)
        if followed is not None and followed.status < 400:
            return None
        what = followed.status if followed is not None else "nothing"
        return (
            f"{url} answered {answer.status} from the new release, a redirect to {target}, "
            f"which answered {what}."
        )
    return f"{url} answered {answer.status} from the new release, not a 2xx or a redirect."
