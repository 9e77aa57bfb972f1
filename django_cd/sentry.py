"""Sentry for a settings module: ``django_cd.sentry.init(dsn, base_dir=BASE_DIR)``.

Tags every error with the django-cd environment and the release (the commit in
the release's ``REVISION`` file, the version the deploy's Sentry markers use), so
Sentry shows which deploy brought an error in. Nothing happens without a DSN, and
sentry-sdk is imported only then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# How far above BASE_DIR a release root may be (BASE_DIR is often the project dir).
SEARCH_DEPTH = 3


def init(
    dsn: str | None = None,
    *,
    base_dir: str | Path | None = None,
    environment: str | None = None,
    release: str | None = None,
    **options: Any,
) -> bool:
    """Start sentry-sdk when a DSN is set (argument, else ``SENTRY_DSN``); True if started.

    ``environment`` and ``release`` default to the deployed release's own
    (``release.json`` and ``REVISION`` found from ``base_dir``); the sample rates
    come from ``SENTRY_SAMPLE_RATE`` and ``SENTRY_TRACES_SAMPLE_RATE`` unless
    given. Other keyword arguments go to ``sentry_sdk.init`` unchanged.
    """
    dsn = os.environ.get("SENTRY_DSN", "") if dsn is None else dsn
    if not dsn:
        return False
    deployed = release_facts(base_dir)
    options.setdefault("sample_rate", _rate("SENTRY_SAMPLE_RATE", 1.0))
    options.setdefault("traces_sample_rate", _rate("SENTRY_TRACES_SAMPLE_RATE", 0.0))

    import sentry_sdk

    if int(sentry_sdk.VERSION.split(".")[0]) >= 3:
        # 3.x replaced send_default_pii with data_collection, which collects
        # user identity and request bodies unless told not to.
        options.setdefault("data_collection", {"user_info": False, "http_bodies": []})
    else:
        options.setdefault("send_default_pii", False)
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or deployed.get("env") or "development",
        release=release or deployed.get("commit"),
        integrations=[DjangoIntegration(), *options.pop("integrations", [])],
        **options,
    )
    return True


def release_facts(base_dir: str | Path | None) -> dict[str, str]:
    """``env``, ``id`` and ``commit`` of the release holding ``base_dir`` (empty if none)."""
    if base_dir is None:
        return {}
    directory = Path(base_dir).resolve()
    for candidate in [directory, *directory.parents][: SEARCH_DEPTH + 1]:
        manifest = candidate / "release.json"
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text())
                revision = (candidate / "REVISION").read_text().strip()
            except (OSError, ValueError):
                return {}
            facts = {"env": data.get("env"), "id": data.get("id"), "commit": revision}
            return {k: str(v) for k, v in facts.items() if v}
    return {}


def _rate(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ImproperlyConfigured(
            f"{variable} must be a number from 0 to 1 (a share of events), not {raw!r}."
        )
    return value
