#!/usr/bin/env python
"""The sample project's manage.py: settings.dev unless DJANGO_SETTINGS_MODULE says otherwise."""

import os
import sys
from pathlib import Path

# The repository root holds the settings package (and django_cd, when run from a checkout).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018  (imports the settings module)
    except ImproperlyConfigured as error:
        # A missing secret is a configuration mistake, not a crash: say what, not where.
        sys.exit(f"Settings {os.environ['DJANGO_SETTINGS_MODULE']} cannot load: {error}")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
