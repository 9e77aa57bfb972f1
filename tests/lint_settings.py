"""tests.settings plus the lint test app, on the database named by LINT_DB_ENGINE/LINT_DB_NAME.

Run in subprocesses only, so that the suite's own database never sees lintapp.
"""

import os

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.lintapp"]  # noqa: F405
DATABASES = {
    "default": {
        "ENGINE": os.environ["LINT_DB_ENGINE"],
        "NAME": os.environ["LINT_DB_NAME"],
        "HOST": os.environ.get("LINT_DB_HOST", ""),
        "USER": os.environ.get("LINT_DB_USER", ""),
    }
}
