from django.apps import AppConfig


class SetuplogsConfig(AppConfig):
    name = "setuplogs"
    verbose_name = "Setup logs"

    def ready(self):
        from setuplogs import (
            resources,  # noqa: F401  (registers the batch GET resource)
            retention,  # noqa: F401  (registers the log lines purger)
        )
