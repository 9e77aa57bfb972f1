"""Smoke tests: run against a deployed environment, over HTTP.

``SMOKE_BASE_URL`` (e.g. ``http://127.0.0.1:8601/``) names the site; without
it every test is skipped, and ``test --pipeline=smoke`` fails for running no
test (unless ``--allow-empty``), so a forgotten URL is never a green stage.
"""

import os
import unittest
from urllib.parse import urljoin
from urllib.request import urlopen

from django.test import SimpleTestCase

from django_cd.testing import pipeline

BASE_URL = os.environ.get("SMOKE_BASE_URL", "")


@pipeline("smoke")
@unittest.skipUnless(BASE_URL, "SMOKE_BASE_URL is not set: no deployed site to test")
class DeployedSiteSmokeTests(SimpleTestCase):
    def get(self, path):
        with urlopen(urljoin(BASE_URL, path), timeout=10) as response:
            return response.status, response.read().decode()

    def test_board_answers(self):
        status, body = self.get("")
        self.assertEqual(status, 200)
        self.assertIn("<h1>", body)

    def test_stats_page_answers(self):
        status, body = self.get("stats/")
        self.assertEqual(status, 200)
        self.assertIn('id="total"', body)

    def test_stylesheet_is_served(self):
        status, body = self.get("static/notes/board.css")
        self.assertEqual(status, 200)
        self.assertGreater(len(body), 0)
