"""Live: DEBUG off, HTTPS only, logs to the console and a file.

``DJANGO_SETTINGS_MODULE=settings.live manage.py check --deploy --fail-level WARNING``
passes once DJANGO_SECRET_KEY, DATABASE_URL and DJANGO_ALLOWED_HOSTS hold sane values.
"""

from pathlib import Path

from .deployed import *

SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

LOGGING = logging_config(config["DJANGO_LOG_LEVEL"], Path(config["DJANGO_LOG_DIR"]) / "django.log")
