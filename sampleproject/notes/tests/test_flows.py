"""Functional tests: a visitor's flows through several views with the test client."""

from django.test import TestCase
from django.urls import reverse

from django_cd.testing import pipeline
from notes.models import Note


@pipeline("functional")
class PinANoteFlowTests(TestCase):
    def test_create_then_list_then_stats(self):
        response = self.client.post(
            reverse("notes:create"),
            {"title": "Release on Friday", "body": "after the demo", "author": "ada"},
        )
        self.assertRedirects(response, reverse("notes:list"))

        listing = self.client.get(reverse("notes:list"))
        self.assertContains(listing, "<h2>Release on Friday</h2>", html=True)
        self.assertNotContains(listing, "No notes yet.")

        stats = self.client.get(reverse("notes:stats"))
        self.assertContains(stats, '<dd id="total">1</dd>', html=True)
        self.assertContains(stats, '<dd id="pinned">0</dd>', html=True)
        self.assertContains(stats, "<li>ada (1)</li>", html=True)

    def test_pinned_note_goes_on_top_of_the_board(self):
        for title, pinned in [("first", False), ("urgent", True), ("last", False)]:
            self.client.post(reverse("notes:create"), {"title": title, "pinned": pinned or ""})
        listing = self.client.get(reverse("notes:list"))
        titles = [note.title for note in listing.context["note_list"]]
        self.assertEqual(titles, ["urgent", "last", "first"])
        stats = self.client.get(reverse("notes:stats"))
        self.assertContains(stats, '<dd id="pinned">1</dd>', html=True)


@pipeline("functional")
class RefusedNoteFlowTests(TestCase):
    def test_blank_title_shows_the_form_again_and_saves_nothing(self):
        response = self.client.post(reverse("notes:create"), {"title": "  "})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "This field is required.")
        self.assertEqual(Note.objects.count(), 0)
        listing = self.client.get(reverse("notes:list"))
        self.assertContains(listing, "No notes yet.")


@pipeline("functional")
class ScrubPersonalDataTests(TestCase):
    """The scrub hook of testing instances (docs/instances.md), on a copy of the data."""

    def test_blanks_emails_and_passwords_and_authors_only_when_asked(self):
        from io import StringIO

        from django.contrib.auth.models import User
        from django.core.management import CommandError, call_command

        user = User.objects.create_user("pat", "pat@example.com", "a long passphrase")
        Note.objects.create(title="Mine", author="pat")
        with self.assertRaisesMessage(CommandError, "pass --yes on a copy"):
            call_command("scrub_personal_data")
        out = StringIO()
        call_command("scrub_personal_data", "--yes", stdout=out)
        user.refresh_from_db()
        self.assertEqual(user.email, "")
        self.assertFalse(user.has_usable_password())
        self.assertEqual(Note.objects.get().author, "someone")
        self.assertEqual(out.getvalue(), "Scrubbed 1 user(s) and 1 note author(s).\n")
