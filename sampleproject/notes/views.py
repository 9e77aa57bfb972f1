from django.db.models import Count, Q
from django.shortcuts import render
from django.views.generic import CreateView, ListView

from .forms import NoteForm
from .models import Note

BOARD_TITLE = "Notes board"


class NoteListView(ListView):
    model = Note
    paginate_by = 20
    extra_context = {"board_title": BOARD_TITLE}


class NoteCreateView(CreateView):
    model = Note
    form_class = NoteForm
    extra_context = {"board_title": BOARD_TITLE}


def board_stats(request):
    """Counts for the board; the page later work dark-launches behind a feature flag."""
    stats = Note.objects.aggregate(total=Count("id"), pinned=Count("id", filter=Q(pinned=True)))
    authors = (
        Note.objects.exclude(author="")
        .values("author")
        .annotate(notes=Count("id"))
        .order_by("-notes", "author")[:5]
    )
    context = {"board_title": BOARD_TITLE, "stats": stats, "authors": authors}
    return render(request, "notes/stats.html", context)
