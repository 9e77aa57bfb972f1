"""Settings helpers for split settings modules, over django-environ.

A settings module declares every variable it needs at once and gets either
all the values or ONE ``ImproperlyConfigured`` naming every missing or
malformed variable and what it should hold. Values never appear in errors::

    from django_cd import env

    config = env.read({
        "DJANGO_SECRET_KEY": env.secret(min_length=50),
        "DATABASE_URL": env.database_url(),
        "DJANGO_ALLOWED_HOSTS": env.list(),
        "SENTRY_DSN": env.string(default=""),
    })
    SECRET_KEY = config["DJANGO_SECRET_KEY"]

Variables come from the process environment, then from the ``.env`` file
named by ``DJANGO_ENV_FILE`` when that file exists (the process environment
wins). The file is read into a private mapping, not into ``os.environ``.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "Variable",
    "boolean",
    "database_url",
    "integer",
    "list",
    "parse_env_text",
    "read",
    "read_env_file",
    "secret",
    "string",
]

_list = list
_MISSING: Any = object()

ENV_FILE_VARIABLE = "DJANGO_ENV_FILE"
#: Set by django-cd's engine for a release's processes; a ``.env`` file cannot change them.
ENGINE_VARIABLES = frozenset(
    {
        "DJANGO_SETTINGS_MODULE",
        ENV_FILE_VARIABLE,
        "VIRTUAL_ENV",
        "PATH",
        "PYTHONDONTWRITEBYTECODE",
        "DJANGO_CD_RELEASE_ENV",
        "DJANGO_CD_WSGI",
        "DJANGO_CD_RELEASE_DIR",
        "DJANGO_CD_NEEDS",
    }
)


@dataclass(frozen=True)
class Variable:
    """How to read one environment variable: its parser, default and description."""

    parse: Callable[[str], Any]
    holds: str
    default: Any = _MISSING
    is_secret: bool = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING


class _Malformed(ValueError):
    """Raised by parsers; the message must never contain the value."""


def secret(*, min_length: int = 1, holds: str = "") -> Variable:
    """A required secret string of at least ``min_length`` characters (no default)."""

    def parse(value: str) -> str:
        if len(value) < min_length:
            raise _Malformed(f"is shorter than {min_length} characters")
        return value

    description = holds or (
        f"a random secret of at least {min_length} characters" if min_length > 1 else "a secret"
    )
    return Variable(parse, description, is_secret=True)


def string(*, default: Any = _MISSING, holds: str = "a string", choices: Any = None) -> Variable:
    def parse(value: str) -> str:
        if choices is not None and value not in choices:
            raise _Malformed(f"is not one of {', '.join(choices)}")
        return value

    if choices is not None and holds == "a string":
        holds = f"one of {', '.join(choices)}"
    return Variable(parse, holds, default)


def boolean(*, default: Any = _MISSING) -> Variable:
    def parse(value: str) -> bool:
        lowered = value.strip().lower()
        if lowered in environ.Env.BOOLEAN_TRUE_STRINGS:
            return True
        if lowered in ("false", "off", "no", "n", "0", ""):
            return False
        raise _Malformed("is not a boolean")

    return Variable(parse, "true or false (also on/off, yes/no, 1/0)", default)


def integer(*, default: Any = _MISSING, minimum: int | None = None) -> Variable:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise _Malformed("is not an integer") from None
        if minimum is not None and number < minimum:
            raise _Malformed(f"is less than {minimum}")
        return number

    holds = "an integer" if minimum is None else f"an integer of at least {minimum}"
    return Variable(parse, holds, default)


def list(*, default: Any = _MISSING, holds: str = "a comma-separated list") -> Variable:
    def parse(value: str) -> _list[str]:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items:
            raise _Malformed("is empty")
        return items

    return Variable(parse, holds, default)


def database_url(*, default: Any = _MISSING) -> Variable:
    """A database URL (``postgres://user:pass@host/db``, ``sqlite:////path/db.sqlite3``)."""

    def parse(value: str) -> dict[str, Any]:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in environ.Env.DB_SCHEMES:
            raise _Malformed("is not a database URL with a known scheme")
        try:
            return dict(environ.Env.db_url_config(value))
        except Exception:  # its messages may quote the URL, password included
            raise _Malformed("could not be parsed as a database URL") from None

    holds = "a database URL such as postgres://user:password@host:5432/name"
    if isinstance(default, str):
        # As django-environ's db_url(): a URL given as the default is parsed like a value.
        try:
            default = parse(default)
        except _Malformed as error:
            raise ImproperlyConfigured(f"The default database URL {error}.") from None
    return Variable(parse, holds, default, is_secret=True)


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The variables of a ``.env`` file (``KEY=value`` lines, ``#`` comments)."""
    return parse_env_text(Path(path).read_text(encoding="utf-8"))


def project_variables(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` without the engine's own variables (see ``ENGINE_VARIABLES``)."""
    return {k: v for k, v in values.items() if k not in ENGINE_VARIABLES}


def parse_env_text(text: str) -> dict[str, str]:
    """The variables of the text of a ``.env`` file, parsed as django-environ does."""

    class _FileEnv(environ.Env):
        ENVIRON: dict[str, str] = {}

    # django-environ logs a malformed line whole, and such a line may hold a
    # secret: keep its logger quiet while the file is read.
    logger = logging.getLogger("environ.environ")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        _FileEnv.read_env(io.StringIO(text), overwrite=True)
    finally:
        logger.disabled = was_disabled
    return dict(_FileEnv.ENVIRON)


def read(
    spec: Mapping[str, Variable], environ_: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Read every variable of ``spec``; raise one error naming all that are wrong."""
    source = dict(os.environ if environ_ is None else environ_)
    env_file = source.get(ENV_FILE_VARIABLE)
    file_note = ""
    if env_file:
        if Path(env_file).is_file():
            source = {**read_env_file(env_file), **source}
        else:
            file_note = f" ({ENV_FILE_VARIABLE} names {env_file}, which does not exist.)"

    values: dict[str, Any] = {}
    problems: _list[str] = []
    for name, variable in spec.items():
        raw = source.get(name)
        if raw is None or (raw == "" and variable.required):
            if variable.required:
                problems.append(f"{name} is not set; it should hold {variable.holds}.")
            else:
                values[name] = variable.default
            continue
        try:
            values[name] = variable.parse(raw)
        except _Malformed as error:
            problems.append(f"{name} {error}; it should hold {variable.holds}.")
    if problems:
        where = "the environment or the .env file named by DJANGO_ENV_FILE"
        raise ImproperlyConfigured(
            f"{len(problems)} setting(s) missing or malformed{file_note}:\n"
            + "\n".join(f"  - {line}" for line in problems)
            + f"\nSet them in {where}."
        )
    return values
