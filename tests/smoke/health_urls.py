from django.urls import include, path

urlpatterns = [path("health/", include("django_cd.health"))]
