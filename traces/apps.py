from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Runs and traces"

    def ready(self):
        from traces import resources  # noqa: F401  (registers runs for the batch GET)
