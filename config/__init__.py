"""Project configuration: settings, URLs, the Celery app and the HTTP plumbing."""

__version__ = "0.1.0"

# Load the Celery app with Django so that @shared_task binds to it.
from config.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
