from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The tasks, registered with Celery so that webhooks.queue can hand deliveries by name;
        # the system check that flags private targets in `check --deploy`.
        from webhooks import checks, tasks  # noqa: F401
