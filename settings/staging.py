"""Staging: production-like, logs to the console."""

from .deployed import *

LOGGING = logging_config(config["DJANGO_LOG_LEVEL"])
