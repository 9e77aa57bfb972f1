"""The "Feature switches" panel through Django's test client: permissions and changes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from django_cd.flags import state as flag_state
from django_cd.models import FlagChange

from .support import put

pytestmark = pytest.mark.django_db
PANEL = "/admin/django_cd/flagrule/"


def staff(username: str, *perms: str) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


@override_settings(DJANGO_CD={"FLAGS": {"beta": {"kind": "release", "expires": "2020-01-01"}}})
def test_panel_lists_flags_in_words_with_stale_and_undeclared_marks():
    put("beta", "selective", [{"kind": "environment", "value": ["staging"]}])
    put("orphan", "global")
    page = staff("viewer", "view_flag").get(PANEL).content.decode()
    assert "Feature switches" in page
    assert "conditional (environment is staging)" in page
    assert "stale" in page and "not declared in code" in page
    assert 'id="read-only"' in page and 'data-flag="beta"' not in page


def test_view_only_user_cannot_change():
    put("beta")
    client = staff("viewer", "view_flag")
    response = client.post(PANEL, {"name": "beta", "action": "on"})
    assert response.status_code == 403
    assert flag_state.read("beta")["state"] == "off"
    assert staff("nobody").get(PANEL).status_code == 403


def test_change_user_switches_on_sets_percent_and_is_audited():
    put("beta")
    client = staff("editor", "change_flag")
    response = client.post(PANEL, {"name": "beta", "action": "on", "reason": "launch"})
    assert response.status_code == 302
    assert flag_state.read("beta")["state"] == "on"
    entry = FlagChange.objects.filter(name="beta").first()
    assert (entry.by, entry.source, entry.reason) == ("editor", "admin", "launch")
    client.post(PANEL, {"name": "beta", "action": "percent", "percent": "10"})
    assert flag_state.read("beta")["conditions"] == [
        {"kind": "percent", "value": 10.0, "exclude": False}
    ]
    page = client.get(PANEL).content.decode()
    assert "conditional (10% of users)" in page and "editor" in page


def test_bad_percent_is_refused_with_a_message():
    put("beta")
    client = staff("editor", "change_flag")
    response = client.post(PANEL, {"name": "beta", "action": "percent", "percent": "150"},
                           follow=True)  # fmt: skip
    assert "Percent 150 is outside 0-100" in response.content.decode()
    assert flag_state.read("beta")["state"] == "off"
