from django.apps import AppConfig


class DjangoCDConfig(AppConfig):
    name = "django_cd"
    verbose_name = "Continuous deployment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_cd import checks  # noqa: F401  (registers the system checks)
        from django_cd.migration_version import checks as _version_checks  # noqa: F401
