"""The sample project's split settings: base, dev, test, staging, live.

``DJANGO_SETTINGS_MODULE=settings.<name>``; dev is the default in manage.py.
"""
