"""Keep secrets out of what the engine prints, logs and records.

A secret reaches output in more than one spelling: as written in
``shared/.env``, percent-decoded (``DATABASE_URL``'s password as Django and
the application see it), percent-encoded, or escaped by ``repr``/JSON. Each
spelling is masked, and a URL-valued secret is also masked by its parts: the
password alone and ``user:password``.

Token boundary: a secret shorter than :data:`ANYWHERE_LENGTH` is masked only
where it stands as a whole token, that is where the characters around it are
not word characters (letters, digits, ``_``); the check applies only to a
side where the secret itself begins or ends with a word character. So the
secret ``short`` masks ``key=short.`` but leaves ``shorter`` alone. A longer
secret is masked wherever it appears: such a string inside unrelated text is
the secret itself, not a coincidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "********"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|DSN|DATABASE_URL|CREDENTIAL", re.I)
URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)@")
# Values this short are too common to mask at all, even as whole tokens.
MIN_SECRET_LENGTH = 4
# From this length on a secret is masked inside words too.
ANYWHERE_LENGTH = 16


def secret_values(variables: Mapping[str, str]) -> list[str]:
    """The values of ``variables`` that are secrets, by name or by holding a password.

    Each comes in every spelling it may take in output, longest first.
    """
    found: set[str] = set()
    for name, value in variables.items():
        if SECRET_NAME.search(name):
            found.add(value)
        found.update(_url_parts(value))
    values: set[str] = set()
    for value in found:
        values.update(spellings(value))
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=lambda v: (-len(v), v))


def _url_parts(value: str) -> list[str]:
    """A URL's password and ``user:password``, as written and decoded."""
    parts = []
    for match in URL_PASSWORD.finditer(value):
        parts.append(match.group("password"))
    try:
        split = urlsplit(value)
    except ValueError:
        return parts
    if split.password:
        parts.append(split.password)
        userinfo = split.netloc.rsplit("@", 1)[0]
        parts.append(userinfo)
        if split.username:
            parts.append(f"{unquote(split.username)}:{unquote(split.password)}")
    return parts


def spellings(secret: str) -> set[str]:
    """``secret`` as written, percent-decoded and -encoded, and escaped by repr and JSON."""
    forms = {secret, unquote(secret)}
    for form in list(forms):
        forms.update({quote(form, safe=""), quote(form), quote_plus(form, safe="")})
    for form in list(forms):
        escaped = json.dumps(form)[1:-1]
        # Some JSON encoders also escape "/" (so "</script>" cannot end a page).
        forms.update({escaped, escaped.replace("/", "\\/"), repr(form)[1:-1]})
    return forms


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = []
    for secret in sorted(set(secrets), key=lambda v: (-len(v), v)):
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        pattern = re.escape(secret)
        if len(secret) < ANYWHERE_LENGTH:
            if re.match(r"\w", secret):
                pattern = r"(?<!\w)" + pattern
            if re.search(r"\w$", secret):
                pattern += r"(?!\w)"
        alternatives.append(pattern)
    return re.compile("|".join(alternatives)) if alternatives else None


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (see :func:`secret_values`), and any URL
    password, replaced by a mask."""
    pattern = _pattern(secrets)
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return URL_PASSWORD.sub(lambda m: m.group("scheme") + MASK + "@", text)
