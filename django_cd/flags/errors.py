"""The errors of the flags layer; commands turn them into ``CommandError``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FlagError(ValueError):
    """Bad input for a flag: the message says what is wrong and what to do."""


class UnknownFlag(FlagError, LookupError):
    """A flag name that neither the database nor ``DJANGO_CD["FLAGS"]`` knows."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        close = difflib.get_close_matches(name, sorted(set(known) - {name}), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        super().__init__(
            f"Unknown flag {name!r}.{hint} Declare it in DJANGO_CD['FLAGS'] and run "
            "`manage.py flags reconcile`, or fix the name."
        )
