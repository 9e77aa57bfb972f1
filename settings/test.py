"""The sample project's own test runs: fast, isolated, in memory."""

from .base import *

DEBUG = False
SECRET_KEY = "test-only-key-not-for-any-deployed-environment-0123456789"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# WhiteNoise serves STATIC_ROOT and warns when it does not exist; tests collect nothing.
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGGING = logging_config("WARNING")

# `manage.py test --pipeline=unit` etc.: see docs/testing.md.
TEST_RUNNER = "django_cd.testing.PipelineRunner"
