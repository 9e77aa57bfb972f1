from django.apps import AppConfig


class LintAppConfig(AppConfig):
    """Migrations that contain each case the plan lints report (no models of its own)."""

    name = "tests.lintapp"
    label = "lintapp"
    default_auto_field = "django.db.models.BigAutoField"
