"""The engine's check of each URL after a switch (issue 9 §6): any 2xx, or a redirect
whose target does not answer an error, unless the environment declares statuses."""

from __future__ import annotations

import pytest

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.smoke import _check_url
from tests.smoke.site import RELEASE, running_site


def test_a_redirecting_home_page_passes_and_a_redirect_to_an_error_does_not() -> None:
    with running_site() as site:
        assert _check_url(site.url, RELEASE, 5) == 200
        assert _check_url(site.url + "to-login/", RELEASE, 5) == 302
        with pytest.raises(StepFailed) as failed:
            _check_url(site.url + "to-error/", RELEASE, 5)
        assert str(failed.value) == (
            f"{site.url}to-error/ answered 302 from the new release, a redirect to "
            f"{site.url}boom/, which answered 500."
        )
        with pytest.raises(StepFailed) as failed:
            _check_url(site.url + "boom/", RELEASE, 5)
        assert str(failed.value).endswith(
            "answered 500 from the new release, not a 2xx or a redirect."
        )


def test_declared_statuses_are_matched_as_they_are() -> None:
    with running_site() as site:
        assert _check_url(site.url + "to-error/", RELEASE, 5, (302,)) == 302
        with pytest.raises(StepFailed) as failed:
            _check_url(site.url, RELEASE, 5, (301, 302))
        assert str(failed.value) == (
            f"{site.url} answered 200 from the new release, not 301, 302."
        )


@pytest.mark.parametrize("value", [[], [200, "302"], [99], "200", [True]])
def test_url_status_must_be_statuses(tmp_path, value) -> None:
    from django.test import override_settings

    from django_cd import conf

    env = {"settings": "settings.staging", "root": str(tmp_path), "smoke": {"url_status": value}}
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": env}}):
        assert [p.id for p in conf.validate()] == ["django_cd.E131"]
    env["smoke"] = {"url_status": [200, 302]}
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": env}}):
        assert conf.validate() == []
