"""django-cd: continuous deployment for Django projects."""

__version__ = "0.1.0.dev0"
