"""Before the switch: prove the new release can serve.

The app server of a release imports its WSGI application (and the ASGI one,
where the project names one in ``ASGI_APPLICATION``) in its workers. A
release whose application raises at import would make the server halt on
reload; importing it first, in the release (its virtualenv, the target
settings and its ``.env``; in its agent during a deploy, where nothing has
imported the application module yet), stops the deploy before anything
changes.
"""

from __future__ import annotations

import json

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release

MARKER = "@@django-cd-serve-check@@"
TIMEOUT = 300.0

# Runs in the release. ``%(wsgi)r`` is the server's "module[:attribute]", or
# None for Django's WSGI_APPLICATION (what runserver and most servers use).
SERVE_CHECK_CODE = """
import importlib, json, sys
# Where manage.py sits, then the release root: settings modules live in either.
sys.path[:0] = [%(project_dir)r, %(root)r]
spec = %(wsgi)r
loaded = []
def load(dotted, kind):
    module, _, attribute = dotted.partition(":")
    application = getattr(importlib.import_module(module), attribute or "application")
    if not callable(application):
        sys.exit(f"{dotted} is not callable: {application!r}")
    loaded.append(f"{kind} {module}:{attribute or 'application'}")
if spec:
    load(spec, "WSGI")
import django
django.setup(set_prefix=False)
from django.conf import settings
if not spec:
    from django.core.servers.basehttp import get_internal_wsgi_application
    get_internal_wsgi_application()
    loaded.append(f"WSGI {settings.WSGI_APPLICATION or 'django.core.wsgi'}")
asgi = getattr(settings, "ASGI_APPLICATION", None)
if asgi:
    load(asgi.rsplit(".", 1)[0] + ":" + asgi.rsplit(".", 1)[1], "ASGI")
print(%(marker)r + json.dumps(loaded))
"""


def serve_check(release: Release, wsgi: str | None) -> str:
    """Import ``release``'s application(s) as its app server will; ``StepFailed`` if not.

    ``wsgi`` is the server's ``"module[:attribute]"`` option, or None to use
    the project's ``WSGI_APPLICATION`` setting.
    """
    code = SERVE_CHECK_CODE % {
        "project_dir": release.project_dir,
        "root": release.path,
        "wsgi": wsgi,
        "marker": MARKER,
    }
    # In the release's agent during a deploy: the WSGI module itself is imported
    # for the first time there, so its import fails as it would in a new worker.
    result = release.manage("shell", "-v", "0", "-c", code, timeout=TIMEOUT)
    loaded = None
    for line in result.output.splitlines():
        if line.startswith(MARKER):
            loaded = json.loads(line[len(MARKER) :])
    if not result.ok or loaded is None:
        what = wsgi or "the WSGI_APPLICATION setting"
        raise StepFailed(
            "serve_check",
            f"Release {release.id} cannot serve: importing its application ({what}) with "
            f"the {release.env.settings} settings failed. Nothing was changed; fix the "
            "error below and deploy again.",
            result.output,
        )
    return "imported " + ", ".join(loaded)
