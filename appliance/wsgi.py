"""WSGI entry point for gunicorn. Runs the start-up checks once per worker process: the audit self-check
(V-222616; in production a failure stops the worker from starting) and the policy audit."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
application = get_wsgi_application()

from appliance.startup import run_startup_checks  # noqa: E402  (needs the app registry set up above)

run_startup_checks(component="web")
