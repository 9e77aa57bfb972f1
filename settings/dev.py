"""Local development: DEBUG on, SQLite under var/, no secrets needed."""

from .base import *

DEBUG = True
SECRET_KEY = "django-insecure-dev-only-key-not-for-any-deployed-environment"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "dev.sqlite3",
    }
}
VAR_DIR.mkdir(exist_ok=True)

LOGGING = logging_config("INFO")
# Deploy notifications by mail (DJANGO_CD "notifications") are printed, not sent.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
