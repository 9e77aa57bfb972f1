"""Settings shared by every environment of the sample project."""

import os
from pathlib import Path

# The repository root: settings/, sampleproject/ and django_cd/ live here.
BASE_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = BASE_DIR / "sampleproject"
VAR_DIR = BASE_DIR / "var"
# Deploy roots live outside any release: in a deployed release BASE_DIR is the
# release itself, so the deploy sets DJANGO_CD_DEPLOY_DIR (shared/.env) there.
DEPLOY_DIR = Path(os.environ.get("DJANGO_CD_DEPLOY_DIR", str(VAR_DIR / "deploy")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_extensions",
    "dbbackup",
    "waffle",
    "health_check",
    "django_cd",
    "notes",
]

MIDDLEWARE = [
    # First, so every answer (redirects and errors too) says which release served it.
    "django_cd.middleware.ReleaseHeaderMiddleware",
    # Counts responses by status per release: the deploy's watch reads the 5xx.
    "django_cd.smoke.counter.ResponseCountMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "notesboard.urls"
WSGI_APPLICATION = "notesboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    # django-dbbackup's default location; deploys pass an explicit path in shared/backups.
    "dbbackup": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "backups")},
    },
}
# SQLite backups are file copies: a restore gives back exactly the old database.
DBBACKUP_CONNECTOR_MAPPING = {"django.db.backends.sqlite3": "dbbackup.db.sqlite.SqliteCPConnector"}
MEDIA_ROOT = VAR_DIR / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Where the deploy targets of this project live, and the feature flags its code
# declares: see docs/settings.md and docs/flags.md.
DJANGO_CD = {
    "FLAGS": {
        "board_stats": {
            "description": "A link to the board's stats on the notes list",
            "owner": "notes",
            "kind": "release",
            "expires": "2027-06-30",
        },
    },
    "ENVIRONMENTS": {
        "staging": {
            "settings": "settings.staging",
            "root": str(DEPLOY_DIR / "staging"),
            "manage": "sampleproject/manage.py",
            "requirements": "sampleproject/requirements.txt",
            "urls": ["http://127.0.0.1:8601/"],
            "server": {"type": "gunicorn", "bind": "127.0.0.1:8601", "wsgi": "notesboard.wsgi"},
            "required_pipelines": ["unit", "functional"],
            # The smoke test after each switch also asks the health URL; then the
            # watch probes for 10 s and rolls back on any 5xx (docs/smoketest.md).
            "smoke": {"defaults": ["home", "admin", "health"]},
            "watch": {"seconds": 10, "max_5xx": 0},
            # Told either way, through Django's mail system (printed by settings.dev).
            "notifications": [{"type": "mail", "to": ["ops@example.com"]}],
        },
        "live": {
            "settings": "settings.live",
            "root": str(DEPLOY_DIR / "live"),
            "manage": "sampleproject/manage.py",
            "requirements": "sampleproject/requirements.txt",
            "urls": ["http://127.0.0.1:8602/"],
            "server": {"type": "gunicorn", "bind": "127.0.0.1:8602", "wsgi": "notesboard.wsgi"},
            "required_pipelines": ["unit", "functional"],
            "promote_from": "staging",
            "backup": "always",
            "allow_dirty": False,
        },
        # A testing instance per feature branch or pull request, each on a fresh copy of
        # staging's database (docs/instances.md): manage.py instance create --env=testing
        # pr-12 --ref BRANCH. Its shared/.env is the model of each instance's.
        "testing": {
            "settings": "settings.staging",
            "root": str(DEPLOY_DIR / "testing"),
            "manage": "sampleproject/manage.py",
            "requirements": "sampleproject/requirements.txt",
            "server": {"type": "gunicorn", "wsgi": "notesboard.wsgi", "workers": 1},
            "instances": {
                "ports": [8610, 8649],
                "database": "db-{name}.sqlite3",
                "database_from": "staging",
                "max_instances": 10,
                "scrub": "scrub_personal_data --yes",
            },
        },
    },
}


def logging_config(level: str, log_file: Path | None = None) -> dict[str, object]:
    """Console logging, plus a file when ``log_file`` is given (live)."""
    handlers: dict[str, dict[str, object]] = {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    }
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(log_file),
            "formatter": "plain",
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {"django": {"handlers": list(handlers), "level": level, "propagate": False}},
    }
