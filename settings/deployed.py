"""What staging and live share: every secret and option from the environment.

Staging and live read the same variables; the values differ per host (each
environment's ``shared/.env``, named by DJANGO_ENV_FILE, or the process
environment). A missing or malformed variable stops start-up with one error
naming all of them.
"""

import os
from pathlib import Path

from django_cd import env, sentry

from .base import *

# A deployed release's shared/ directory (next to the .env file), else var/.
SHARED_DIR = (
    Path(os.environ["DJANGO_ENV_FILE"]).parent if "DJANGO_ENV_FILE" in os.environ else VAR_DIR
)

config = env.read(
    {
        "DJANGO_SECRET_KEY": env.secret(min_length=50),
        "DATABASE_URL": env.database_url(),
        "DJANGO_ALLOWED_HOSTS": env.list(holds="a comma-separated list of host names"),
        "SENTRY_DSN": env.string(default="", holds="a Sentry DSN, or nothing"),
        "DJANGO_LOG_LEVEL": env.string(
            default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        ),
        "DJANGO_LOG_DIR": env.string(default=str(VAR_DIR / "log"), holds="a directory"),
        "DJANGO_STATIC_ROOT": env.string(default=str(STATIC_ROOT), holds="a directory"),
        "DJANGO_SECURE_SSL_REDIRECT": env.boolean(default=True),
        "DJANGO_CACHE_DIR": env.string(default=str(SHARED_DIR / "cache"), holds="a directory"),
        # Uploads outlive releases: in shared/, never inside a release (check E151).
        "DJANGO_MEDIA_ROOT": env.string(default=str(SHARED_DIR / "media"), holds="a directory"),
    }
)

DEBUG = False
SECRET_KEY = config["DJANGO_SECRET_KEY"]
DATABASES = {"default": config["DATABASE_URL"]}
ALLOWED_HOSTS = config["DJANGO_ALLOWED_HOSTS"]
SENTRY_DSN = config["SENTRY_DSN"]
# Errors tagged with this environment and release (the commit); nothing without a DSN.
sentry.init(SENTRY_DSN, base_dir=BASE_DIR)
STATIC_ROOT = config["DJANGO_STATIC_ROOT"]
MEDIA_ROOT = config["DJANGO_MEDIA_ROOT"]
# Feature flags are read from a snapshot in the cache: every process of the
# environment (web workers, manage.py flags) must share it, so not LocMemCache.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": config["DJANGO_CACHE_DIR"],
    }
}

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = config["DJANGO_SECURE_SSL_REDIRECT"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
