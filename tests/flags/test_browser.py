"""The panel in a real headless Chromium: log in, switch a flag on, see the page change."""

from __future__ import annotations

import shutil

from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from django_cd.flags import evaluation
from django_cd.flags import state as flag_state
from django_cd.models import FlagChange

# Debian's packages (scripts/ensure-services.sh installs them).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@override_settings(ROOT_URLCONF="tests.flags.urls", ALLOWED_HOSTS=["localhost", "127.0.0.1"])
class FeatureSwitchesInChromium(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.browser = browser()
        cls.browser.implicitly_wait(5)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.browser.quit()
        super().tearDownClass()

    def setUp(self) -> None:
        evaluation.changed()
        User.objects.create_superuser("admin", "admin@example.com", "s3cret-pass")
        flag_state.write(flag_state.make("board_stats", "flag", "disabled", []))

    def board(self) -> str:
        self.browser.get(self.live_server_url + "/board/")
        return str(self.browser.find_element(By.ID, "board").text)

    def test_log_in_switch_on_see_the_page_change(self) -> None:
        assert self.board() == "Board stats: off"
        self.browser.get(self.live_server_url + "/admin/login/?next=/admin/")
        self.browser.find_element(By.NAME, "username").send_keys("admin")
        self.browser.find_element(By.NAME, "password").send_keys("s3cret-pass")
        self.browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        self.browser.find_element(By.LINK_TEXT, "Feature switches").click()
        row = self.browser.find_element(By.ID, "flag-board_stats")
        assert row.get_attribute("data-state") == "off"
        row.find_element(By.CSS_SELECTOR, 'button[value="on"]').click()
        WebDriverWait(self.browser, 10).until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, "#flag-board_stats .flag-state"), "on"
            )
        )
        assert self.board() == "Board stats: on"
        entry = FlagChange.objects.get(name="board_stats")
        assert (entry.by, entry.source, entry.new["state"]) == ("admin", "admin", "on")
