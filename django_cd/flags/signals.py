"""A new snapshot version whenever a flag, switch, sample or rule changes.

The version is written at once (so the writing process and a test inside a
transaction see the change) and again on commit: a process that read the
old rows between the two writes cached them under the first version only.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from waffle import get_waffle_flag_model, get_waffle_sample_model, get_waffle_switch_model

from django_cd.flags.evaluation import changed
from django_cd.models import FlagRule


def _on_change(**kwargs: Any) -> None:
    changed()
    transaction.on_commit(changed)


def connect() -> None:
    """Called from ``AppConfig.ready()`` when django-waffle is installed."""
    flag_model: Any = get_waffle_flag_model()
    for model in (flag_model, get_waffle_switch_model(), get_waffle_sample_model(), FlagRule):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"django_cd_flags_{model}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"django_cd_flags_d{model}")
    for through in (flag_model.users.through, flag_model.groups.through):
        m2m_changed.connect(_on_change, sender=through, dispatch_uid=f"django_cd_flags_{through}")
