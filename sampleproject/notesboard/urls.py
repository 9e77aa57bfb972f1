from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Readiness (database, cache, storage, migrations, release) and liveness: docs/monitoring.md.
    path("health/", include("django_cd.health")),
    path("", include("notes.urls")),
]
