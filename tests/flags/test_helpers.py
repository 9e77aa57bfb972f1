"""The template tag, the view decorator and mixin, and override_flag."""

from __future__ import annotations

import pytest
from django.http import Http404, HttpRequest, HttpResponse
from django.template import Context, Template, TemplateSyntaxError
from django.views import View

from django_cd import flags

from .support import put, request

pytestmark = pytest.mark.django_db

TEMPLATE = '{% load cd_flags %}{% ifflag "banner" %}ON{% else %}OFF{% endifflag %}'


def render(page: HttpRequest) -> str:
    return Template(TEMPLATE).render(Context({"request": page}))


def test_template_tag_follows_the_flag():
    put("banner")
    assert render(request()) == "OFF"
    put("banner", "global")
    assert render(request()) == "ON"
    tag = '{% load cd_flags %}{% flag_active "banner" as on %}{% if on %}yes{% endif %}'
    assert Template(tag).render(Context({"request": request()})) == "yes"


def test_template_tag_needs_a_name():
    with pytest.raises(TemplateSyntaxError, match="takes one argument"):
        Template("{% load cd_flags %}{% ifflag %}x{% endifflag %}")


def test_view_decorator_404s_or_redirects_when_off():
    @flags.flag_required("beta")
    def view(req: HttpRequest) -> HttpResponse:
        return HttpResponse("beta")

    @flags.flag_required("beta", redirect_to="/old/")
    def redirecting(req: HttpRequest) -> HttpResponse:
        return HttpResponse("beta")

    put("beta")
    with pytest.raises(Http404):
        view(request())
    assert redirecting(request())["Location"] == "/old/"
    put("beta", "global")
    assert view(request()).content == b"beta"


def test_class_based_view_mixin():
    class Beta(flags.FlagRequiredMixin, View):
        flag_name = "beta"

        def get(self, req: HttpRequest) -> HttpResponse:
            return HttpResponse("beta")

    put("beta")
    with pytest.raises(Http404):
        Beta.as_view()(request())
    put("beta", "global")
    assert Beta.as_view()(request()).status_code == 200


def test_override_flag_wins_and_ends_with_the_block():
    put("beta")
    with flags.override_flag("beta", active=True):
        assert flags.is_active("beta")
        with flags.override_flag("beta", active=False):
            assert not flags.is_active("beta")
        assert flags.is_active("beta")
    assert not flags.is_active("beta")


@flags.override_flag("undeclared_in_db", active=True)
def test_override_flag_as_decorator_needs_no_row():
    assert flags.is_active("undeclared_in_db")
