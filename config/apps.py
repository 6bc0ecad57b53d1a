from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    name = "config"
    verbose_name = "Vantage platform"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the system checks
