"""WSGI entry point: `gunicorn config.wsgi -c config/gunicorn.py`."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Load the URL conf (and every view with it) now rather than on the first request, then
# move all that lives as long as the process out of the collector's sight: a full
# collection no longer walks it in the middle of a request, which made the slowest
# answers slow.
get_resolver().url_patterns  # noqa: B018 - imported for its side effect
gc.freeze()
