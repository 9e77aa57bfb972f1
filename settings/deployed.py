"""What staging and live share: every secret and option from the environment.

Staging and live read the same variables; the values differ per host (each
environment's ``shared/.env``, named by DJANGO_ENV_FILE, or the process
environment). A missing or malformed variable stops start-up with one error
naming all of them.
"""

from django_cd import env

from .base import *

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
    }
)

DEBUG = False
SECRET_KEY = config["DJANGO_SECRET_KEY"]
DATABASES = {"default": config["DATABASE_URL"]}
ALLOWED_HOSTS = config["DJANGO_ALLOWED_HOSTS"]
SENTRY_DSN = config["SENTRY_DSN"]
STATIC_ROOT = config["DJANGO_STATIC_ROOT"]

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = config["DJANGO_SECURE_SSL_REDIRECT"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
