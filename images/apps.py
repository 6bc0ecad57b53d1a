from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "images"
    verbose_name = "Images"

    def ready(self) -> None:
        # The job's task, registered with Celery so that images.queue can hand it by name.
        from images import tasks  # noqa: F401
        from images.validation import decoder_limits_apply

        # Every decode in the process, the classifier's included, is bounded.
        decoder_limits_apply()
