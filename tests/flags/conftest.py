"""Each test starts with an empty cache and no snapshot kept by this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from django_cd.flags import evaluation


@pytest.fixture(autouse=True)
def fresh_flags() -> Iterator[None]:
    cache.clear()
    evaluation._process = None
    yield
    cache.clear()
    evaluation._process = None


@pytest.fixture
def user(db: Any) -> User:
    return User.objects.create_user("ada", "Ada@Example.com", "pw")
