"""Pipeline-tagged tests: ``@pipeline(...)`` and ``manage.py test --pipeline=...``.

``TEST_RUNNER = "django_cd.testing.PipelineRunner"`` (or
``"django_cd.testing.NosePipelineRunner"`` with ``pip install django-cd-deploy[nose]``).
The deploy gate reads recorded outcomes through :mod:`django_cd.testing.results`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_cd.testing.decorator import pipeline, pipelines_of

if TYPE_CHECKING:
    from django_cd.testing.nose_runner import NosePipelineRunner
    from django_cd.testing.runner import PipelineRunner

__all__ = ["NosePipelineRunner", "PipelineRunner", "pipeline", "pipelines_of"]


def __getattr__(name: str) -> Any:
    # The runners pull in django.test (and django-nose, an optional extra); a
    # project that only imports @pipeline, or the system checks, never pays for that.
    if name == "PipelineRunner":
        from django_cd.testing.runner import PipelineRunner

        return PipelineRunner
    if name == "NosePipelineRunner":
        from django_cd.testing.nose_runner import NosePipelineRunner

        return NosePipelineRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
