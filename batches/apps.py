from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self):
        from batches import resources  # noqa: F401  (registers the batch GET resources)
