"""``deploy_window``: the hours when deploying is allowed (an admin is at hand).

Grammar: one or more ranges separated by commas; each range is
``DAYS HH:MM-HH:MM [ZONE]``, where DAYS is a day (``mon``) or a span of days
(``mon-thu``, ``fri-mon`` wraps round the week) and ZONE an IANA name
(``Europe/Warsaw``; UTC when left out). The end time is exclusive and may be
``24:00``. Example: ``"mon-thu 09:00-16:00 Europe/Warsaw, fri 09:00-12:00 Europe/Warsaw"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RANGE_RE = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)(?:\s+(?P<zone>\S+))?$"
)


class BadWindow(ValueError):
    """The window cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Range:
    days: frozenset[int]  # Monday is 0, as datetime.weekday()
    start: int  # minutes since midnight
    end: int
    zone: ZoneInfo
    text: str

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        minutes = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minutes < self.end


def parse(text: str) -> list[Range]:
    """The ranges of ``text``, or :class:`BadWindow` naming the part that is wrong."""
    ranges = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(ranges):
        raise BadWindow(f"{text!r} holds an empty range.")
    return [_parse_range(part) for part in ranges]


def _parse_range(text: str) -> Range:
    match = RANGE_RE.match(text.lower() if " " not in text else _lower_days(text))
    if match is None:
        raise BadWindow(f"{text!r} is not 'DAYS HH:MM-HH:MM [ZONE]', e.g. 'mon-fri 09:00-16:00'.")
    first, last = match["first"], match["last"] or match["first"]
    for day in (first, last):
        if day not in DAYS:
            raise BadWindow(f"{text!r}: {day!r} is not a day ({', '.join(DAYS)}).")
    start, end = _minutes(match["start"], text), _minutes(match["end"], text)
    if end <= start:
        raise BadWindow(f"{text!r}: the end {match['end']} is not after the start.")
    try:
        zone = ZoneInfo(match["zone"] or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadWindow(f"{text!r}: {match['zone']!r} is not a known time zone.") from None
    a, b = DAYS.index(first), DAYS.index(last)
    days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(0, b + 1)])
    return Range(days, start, end, zone, text)


def _lower_days(text: str) -> str:
    # Days are case-blind; zone names are not (Europe/Warsaw).
    head, _, rest = text.partition(" ")
    return f"{head.lower()} {rest.strip()}"


def _minutes(value: str, text: str) -> int:
    hours, minutes = int(value[:2]), int(value[3:])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise BadWindow(f"{text!r}: {value} is not a time of day.")
    return hours * 60 + minutes


def is_open(ranges: list[Range], moment: datetime) -> bool:
    return any(r.contains(moment) for r in ranges)


def clock(moment: datetime, ranges: list[Range]) -> str:
    """``moment`` in the first range's zone, for messages."""
    zone = ranges[0].zone if ranges else ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%a %H:%M %Z")


__all__ = ["BadWindow", "Range", "clock", "is_open", "parse"]
