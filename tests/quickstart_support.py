"""README.md's quick start, as a user follows it: its commands and its ``shared/.env``,
read from the README itself, run for real in a scratch project.

What a user brings (a Django project in a git repository, a git identity) is
made here; what they do is what the README says, with these substitutions only:

- ``pip install 'django-cd-deploy[...]'`` is not run: the test's virtualenv holds
  django-cd-deploy already, installed from this checkout;
- in the requirements cdinit wrote, ``django-cd-deploy[...]`` becomes a wheel built
  from this checkout (PyPI's would not be the code under test), before the commit;
- ``createsuperuser``'s prompts are answered with ``--noinput`` and
  ``DJANGO_SUPERUSER_*`` variables (no terminal here);
- ``/home/you`` in the README's ``.env`` is the scratch home directory, and the
  secret key is the output of the command the README gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.cookiejar
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
BIN = Path(sys.executable).parent
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
COMMANDS_MARK = "<!-- quick start: the commands"
ENV_MARK = "<!-- quick start: shared/.env -->"
SECTION = "## Using it in your project"
#: In ``commands()``: the README's step "give each variable of shared/.env a value".
FILL = "<fill shared/.env>"


def quick_start_section(readme: str | None = None) -> str:
    text = README.read_text() if readme is None else readme
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def fenced_block(section: str, mark: str) -> list[str]:
    """The lines of the first fenced block after ``mark``."""
    after = section[section.index(mark) :]
    match = re.search(r"```[a-z]*\n(.*?)```", after, re.S)
    assert match, f"no code block after {mark}"
    return match.group(1).splitlines()


def commands(readme: str | None = None) -> list[str]:
    """The quick start's commands, in order, without comments."""
    found = []
    for line in fenced_block(quick_start_section(readme), COMMANDS_MARK):
        if line.startswith("#") and "shared/.env" in line:
            found.append(FILL)  # the one edit: the step the README describes below
            continue
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            found.append(command)
    return found


def env_example(readme: str | None = None) -> dict[str, str]:
    """The README's filled-in ``shared/.env``: name -> value as written there."""
    lines = fenced_block(quick_start_section(readme), ENV_MARK)
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def hand_edits(readme: str | None = None) -> list[str]:
    """Files the quick start asks the user to edit by hand, besides ``shared/.env``:
    its Python blocks (settings to paste) and blocks headed by another file's name.
    The hand-written ``DJANGO_CD`` example after "An environment by hand" is the
    reference for those who skip cdinit, not a step of the quick start."""
    section = quick_start_section(readme).split("An environment by hand", 1)[0]
    edits = []
    for match in re.finditer(r"```([a-z]*)\n(.*?)```", section, re.S):
        language, body = match.groups()
        first = body.splitlines()[0] if body.strip() else ""
        if language == "python":
            edits.append(f"python block: {first}")
        elif first.startswith("# ") and "/" in first.split()[1] and "shared/.env" not in first:
            edits.append(first)
    return edits


@contextlib.contextmanager
def port_range_lock() -> Iterator[None]:
    """cdinit takes the first free port from 8001: two quick starts at once (xdist
    workers, a benchmark) would both take it before either binds. One at a time."""
    path = Path(tempfile.gettempdir()) / "django-cd-quickstart.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_wheel(target: Path) -> Path:
    """A wheel of this checkout (its working tree), as PyPI would serve
    django-cd-deploy. Built from a copy: setuptools builds in the source tree, and two
    test workers building at once would share its build/ directory."""
    source = target / "source"
    shutil.copytree(REPO_ROOT / "django_cd", source / "django_cd", ignore=IGNORE)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = target.glob("django_cd_deploy-*.whl")
    return wheel


class QuickStart:
    """A user's machine in a temp dir: a home directory and a project in ``project``."""

    def __init__(self, base: Path, wheel: Path, name: str = "mysite") -> None:
        self.base = base
        self.home = base / "home"
        self.home.mkdir()
        self.name = name
        self.project = base / name
        self.wheel = wheel
        #: What the developer's shell holds besides the defaults (their settings' needs).
        self.shell: dict[str, str] = {}

    @property
    def environ(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "PYTEST_", "VIRTUAL_ENV"))
        }
        env.update(HOME=str(self.home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
        return {**env, **self.shell}

    def sh(
        self, command: str, *, extra: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=self.project,
            env={**self.environ, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result

    def startproject(self) -> None:
        """What the user has before the quick start: a stock project, committed."""
        subprocess.run(
            [str(BIN / "django-admin"), "startproject", self.name],
            cwd=self.base,
            env=self.environ,
            check=True,
        )
        self.git_init()

    def git_init(self) -> None:
        for command in (
            "git init -q -b main",
            "git config user.name 'Dee Ployer'",
            "git config user.email dee@example.com",
            "printf '__pycache__/\\n*.sqlite3\\n' > .gitignore",
            "git add -A && git commit -q -m 'A Django project'",
        ):
            self.sh(command)

    def run(self, command: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """One command of the README, with the substitutions of this module's docstring."""
        if command.startswith("pip install"):
            return subprocess.CompletedProcess(command, 0, "", "")
        if command.startswith("git add"):
            self.use_checkout_wheel()
        if "createsuperuser" in command:
            command += " --noinput --username admin --email admin@example.com"
        return self.sh(command, extra=extra or None)

    def use_checkout_wheel(self) -> None:
        requirements = self.project / "requirements.txt"
        text = requirements.read_text()
        new = re.sub(r"^django-cd-deploy(\[[^\]]*\])?", rf"{self.wheel}\1", text, flags=re.M)
        requirements.write_text(new)

    def env_file(self, env: str = "staging") -> Path:
        return self.home / "deploys" / self.name / env / "shared" / ".env"

    def fill_env_file(self, example: dict[str, str], env: str = "staging") -> list[str]:
        """Give each variable of the template cdinit wrote the README's value; the names
        the template lists, in order."""
        path = self.env_file(env)
        names, lines = [], []
        for line in path.read_text().splitlines():
            name = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
            if name is None:
                lines.append(line)
                continue
            names.append(name)
            lines.append(f"{name}={self.value(example[name])}")
        path.write_text("\n".join(lines) + "\n")
        return names

    def value(self, written: str) -> str:
        command = re.fullmatch(r"<the output of: (.*)>", written)
        if command:
            return self.sh(command.group(1)).stdout.strip()
        return written.replace("/home/you", str(self.home))

    def stop_servers(self) -> None:
        """No gunicorn outlives the test, whatever it broke."""
        self.sh("python manage.py server stop --env=staging", check=False)
        for pidfile in self.home.glob("deploys/*/*/shared/run/*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


class Browser:
    """A user's browser against the deployed site: cookies, no redirects followed."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPCookieProcessor(self.cookies)
        )

    def request(
        self, path: str, data: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def log_in(self, username: str, password: str) -> tuple[int, dict[str, str]]:
        status, _, page = self.request("/admin/login/")
        assert status == 200, status
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:500]
        status, headers, _ = self.request(
            "/admin/login/?next=/admin/",
            {
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": password,
                "next": "/admin/",
            },
        )
        return status, headers


def new_password() -> str:
    return "qs-" + secrets.token_urlsafe(16)
