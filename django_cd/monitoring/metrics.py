"""StatsD: each deploy's and rollback's outcome, duration and step durations.

Names, under the configured prefix: ``<env>.<action>.<status>`` (a counter),
``<env>.<action>.duration`` and ``<env>.<action>.step.<step>`` (timers, ms).
"""

from __future__ import annotations

from typing import Any

from django_cd.pipeline.steps import Outcome


def send(settings: dict[str, Any], outcome: Outcome) -> str:
    import statsd

    client = statsd.StatsClient(settings["host"], settings["port"], prefix=settings["prefix"])
    name = f"{outcome.env}.{outcome.action}"
    pipe = client.pipeline()
    pipe.incr(f"{name}.{outcome.status}")
    pipe.timing(f"{name}.duration", outcome.seconds * 1000)
    for step in outcome.steps:
        pipe.timing(f"{name}.step.{step.name}", step.seconds * 1000)
    pipe.send()
    return f"metrics sent to statsd {settings['host']}:{settings['port']}"
