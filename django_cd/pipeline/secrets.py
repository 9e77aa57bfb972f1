"""Keep secrets out of what the engine prints, logs and records."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "********"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|DSN|DATABASE_URL|CREDENTIAL", re.I)
URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)@")
# Values this short are too common to mask without mangling unrelated output.
MIN_SECRET_LENGTH = 4


def secret_values(variables: Mapping[str, str]) -> list[str]:
    """The values of ``variables`` that are secrets, by name or by holding a password."""
    values = []
    for name, value in variables.items():
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            values.append(value)
        for match in URL_PASSWORD.finditer(value):
            values.append(match.group("password"))
    return sorted(set(values), key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value, and any URL password, replaced by a mask."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return URL_PASSWORD.sub(lambda m: m.group("scheme") + MASK + "@", text)
