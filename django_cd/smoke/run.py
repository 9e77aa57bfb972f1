"""Running the smoke checks: retries through a grace period, then one result per check."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django_cd.conf import Environment
from django_cd.smoke import config
from django_cd.smoke.config import SmokeCheck
from django_cd.smoke.http import Client, ProbeError, Response

RELEASE_HEADER = "X-Release"
FIRST_DELAY = 0.25
MAX_DELAY = 4.0
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# Nagios plugin exit codes (and their words).
HEALTHY = ("OK", "working")
NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


@dataclass
class CheckResult:
    """How one check went: ``message`` says why it failed (or what it saw)."""

    name: str
    ok: bool
    status: int | None
    seconds: float
    message: str
    #: Passed, but slower than its ``warn_seconds``.
    slow: bool = False
    attempts: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }


@dataclass
class SmokeReport:
    """Every check's last result against ``url``."""

    url: str
    release: str | None
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [result for result in self.results if not result.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "release": self.release,
            "seconds": round(self.seconds, 3),
            "checks": [result.as_dict() for result in self.results],
        }

    def summary(self) -> str:
        """One line: how many passed, and the first failure."""
        total = len(self.results)
        if self.ok:
            return f"{total}/{total} smoke checks passed against {self.url}"
        first = self.failed[0]
        return (
            f"{len(self.failed)} of {total} smoke checks failed against {self.url}: "
            f"{first.name}: {first.message}"
        )

    def table(self) -> list[str]:
        """The results as aligned lines: check, result, status, time, message."""
        width = max([len("check"), *(len(result.name) for result in self.results)])
        lines = [f"{'check':<{width}}  result  status    time  message"]
        for result in self.results:
            verdict = "ok" if result.ok else "FAILED"
            status = str(result.status) if result.status is not None else "-"
            retried = f" (after {result.attempts} tries)" if result.attempts > 1 else ""
            lines.append(
                f"{result.name:<{width}}  {verdict:<6}  {status:>6}  {result.seconds:5.2f}s  "
                f"{result.message}{retried}"
            )
        return lines

    def nagios(self) -> tuple[int, str]:
        """(exit code, the plugin line) as Nagios, Icinga and friends read them."""
        slow = [result for result in self.results if result.ok and result.slow]
        if not self.ok:
            code = 2
        elif slow:
            code = 1
        else:
            code = 0
        if code == 1:
            text = f"{len(slow)} check(s) slow: " + ", ".join(
                f"{r.name} {r.seconds:.2f}s" for r in slow
            )
        else:
            text = self.summary()
        perf = " ".join(f"'{r.name}'={r.seconds:.3f}s" for r in self.results)
        return code, f"SMOKE {NAGIOS[code]} - {text}" + (f" | {perf}" if perf else "")


@dataclass(frozen=True)
class Credentials:
    """The smoke user's name and password; never printed (``mask``)."""

    user: str
    password: str

    def mask(self, text: str) -> str:
        # The password is the secret; a user name is not (and may be a common word).
        return text.replace(self.password, "********") if self.password else text


def credentials(env: Environment, environ: dict[str, str] | None = None) -> Credentials | None:
    """The smoke user from the process environment, or None when not both are set."""
    opts = config.options(env)
    source = os.environ if environ is None else environ
    user, password = source.get(opts.user_variable), source.get(opts.password_variable)
    return Credentials(user, password) if user and password else None


class SmokeRun:
    """The checks of ``env`` against ``url``, expecting ``release`` (None: any)."""

    def __init__(
        self,
        env: Environment,
        url: str,
        release: str | None,
        *,
        grace_seconds: float | None = None,
        checks: list[SmokeCheck] | None = None,
        login: Credentials | None = None,
    ) -> None:
        self.env, self.url, self.release = env, url, release
        self.options = config.options(env)
        self.grace = self.options.grace_seconds if grace_seconds is None else grace_seconds
        self.checks = config.checks(env) if checks is None else checks
        self.login = login if login is not None else credentials(env)
        self._session: Client | None = None

    def run(self) -> SmokeReport:
        """Run every check; retry the failing ones with backoff until the grace ends."""
        started = time.monotonic()
        deadline = started + self.grace
        # By position, not name: a declared check may share a default's name.
        results: dict[int, CheckResult] = {}
        pending = list(range(len(self.checks)))
        delay = FIRST_DELAY
        attempt = 0
        while True:
            attempt += 1
            for index in pending:
                result = self.run_one(self.checks[index])
                result.attempts = attempt
                results[index] = result
            pending = [index for index in pending if not results[index].ok]
            if not pending or time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        report = SmokeReport(self.url, self.release, [results[i] for i in sorted(results)])
        report.seconds = time.monotonic() - started
        return report

    def run_one(self, check: SmokeCheck) -> CheckResult:
        started = time.monotonic()
        try:
            if check.call is not None:
                check.call(self.env, self.url, self.release)
                return CheckResult(check.name, True, None, time.monotonic() - started, "passed")
            client = self._logged_in() if check.login else Client(self.url, check.max_seconds)
            response = client.request(check.method, check.path)
        except ProbeError as error:
            return self._failed(check, None, started, str(error))
        except Exception as error:  # a project's own check: its failure, not ours
            return self._failed(check, None, started, f"{type(error).__name__}: {error}")
        problems = self._judge(check, response)
        seconds = response.seconds
        if problems:
            return self._failed(check, response.status, started, "; ".join(problems), seconds)
        slow = check.warn_seconds is not None and seconds > check.warn_seconds
        message = f"slower than {check.warn_seconds:g} s" if slow else "passed"
        return CheckResult(check.name, True, response.status, seconds, message, slow=slow)

    def _failed(
        self,
        check: SmokeCheck,
        status: int | None,
        started: float,
        message: str,
        seconds: float | None = None,
    ) -> CheckResult:
        if self.login is not None:
            message = self.login.mask(message)
        took = time.monotonic() - started if seconds is None else seconds
        return CheckResult(check.name, False, status, took, message)

    def _judge(self, check: SmokeCheck, response: Response) -> list[str]:
        problems = []
        if response.status != check.status:
            problems.append(f"answered {response.status}, not {check.status}")
        served = response.header(RELEASE_HEADER)
        if check.release and self.release is not None and served != self.release:
            problems.append(
                f"served by release {served or '(no X-Release header)'}, not {self.release}"
            )
        for text in check.contains:
            if text not in response.body:
                problems.append(f"{text!r} is not in the page")
        for text in check.not_contains:
            if text in response.body:
                problems.append(f"{text!r} is in the page")
        if check.json:
            problems += _json_problems(response)
        if response.seconds > check.max_seconds:
            problems.append(f"took {response.seconds:.2f} s, more than {check.max_seconds:g} s")
        return problems

    def _logged_in(self) -> Client:
        """A client logged in as the smoke user (once per run)."""
        if self._session is not None:
            return self._session
        if self.login is None:
            raise ProbeError(
                f"this check logs in, but {self.options.user_variable} and "
                f"{self.options.password_variable} are not both set in the environment"
            )
        client = Client(self.url, self.options.timeout)
        page = client.request("GET", self.options.login_path)
        token = CSRF_FIELD.search(page.body)
        if page.status != 200 or token is None:
            raise ProbeError(
                f"the login page {self.options.login_path} answered {page.status} "
                "without a login form"
            )
        form = (
            f"csrfmiddlewaretoken={_quote(token.group(1))}&username={_quote(self.login.user)}"
            f"&password={_quote(self.login.password)}"
        )
        parts = client.url(self.options.login_path).split("://", 1)[1]
        answer = client.request(
            "POST",
            self.options.login_path,
            body=form.encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                # The site sees https (the proxy header): CSRF wants an https referer.
                "Referer": f"https://{parts}",
            },
            follow=False,
        )
        if answer.status not in (301, 302, 303) or "sessionid" not in client.cookies:
            raise ProbeError(
                f"logging in as the smoke user ({self.options.user_variable}) failed: "
                f"the login page answered {answer.status}; check the credentials"
            )
        self._session = client
        return client


def _quote(value: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(value)


def _json_problems(response: Response) -> list[str]:
    try:
        data = json.loads(response.body)
    except ValueError:
        kind = response.header("content-type") or "no content type"
        return [f"answered {kind.split(';')[0]}, not JSON"]
    if isinstance(data, dict):
        # django-health-check says "OK" (4.x) or "working" (3.x) for a passing check.
        unhealthy = [
            f"{k}: {v}" for k, v in data.items() if isinstance(v, str) and v not in HEALTHY
        ]
        if unhealthy:
            return [f"unhealthy: {'; '.join(unhealthy)}"]
    return []
