from django.urls import path

from . import views

app_name = "notes"
urlpatterns = [
    path("", views.NoteListView.as_view(), name="list"),
    path("new/", views.NoteCreateView.as_view(), name="create"),
    path("stats/", views.board_stats, name="stats"),
]
