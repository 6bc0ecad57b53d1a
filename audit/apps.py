from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        # The sink's tasks, registered with Celery so that audit.sink can queue them by name.
        from audit import tasks  # noqa: F401
