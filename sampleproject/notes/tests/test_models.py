"""Unit tests: fast, no HTTP. Untagged, so they belong to the default pipeline (unit)."""

from django.test import SimpleTestCase, TestCase

from notes.forms import NoteForm
from notes.models import Note


class NoteTests(TestCase):
    def test_str_is_the_title(self):
        self.assertEqual(str(Note(title="Buy milk")), "Buy milk")

    def test_pinned_notes_come_first_then_newest(self):
        old_pinned = Note.objects.create(title="old pinned", pinned=True)
        older = Note.objects.create(title="older")
        newer = Note.objects.create(title="newer")
        self.assertEqual(list(Note.objects.all()), [old_pinned, newer, older])

    def test_absolute_url_is_the_board(self):
        self.assertEqual(Note(title="x").get_absolute_url(), "/")


class NoteFormTests(SimpleTestCase):
    def test_title_is_stripped(self):
        form = NoteForm(data={"title": "  Standup at ten  "})
        self.assertTrue(form.is_valid())
        self.assertEqual(form.cleaned_data["title"], "Standup at ten")

    def test_blank_title_is_refused(self):
        form = NoteForm(data={"title": "   "})
        self.assertFalse(form.is_valid())
        self.assertEqual(form.errors["title"], ["This field is required."])
