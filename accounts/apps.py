from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Registers the OpenAPI extensions describing our authentication classes,
        # and the system checks of the decision point's configuration.
        from accounts import checks  # noqa: F401
        from accounts.identity import schema  # noqa: F401
