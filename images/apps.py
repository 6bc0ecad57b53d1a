from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "images"
    verbose_name = "Images"

    def ready(self) -> None:
        from images.validation import decoder_limits_apply

        # Every decode in the process, the classifier's included, is bounded.
        decoder_limits_apply()
