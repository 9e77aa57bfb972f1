"""The admin and one flagged page, for the browser test."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.urls import path

PAGE = Template(
    '{% load cd_flags %}<html><body><p id="board">'
    '{% ifflag "board_stats" %}Board stats: on{% else %}Board stats: off{% endifflag %}'
    "</p></body></html>"
)


def flagged(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.render(Context({"request": request})))


urlpatterns = [path("admin/", admin.site.urls), path("board/", flagged)]
