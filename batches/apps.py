from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self):
        from batches import checks, resources  # noqa: F401  (register checks and batch GET resources)
