from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self):
        from batches import (
            health,
            resources,  # noqa: F401  (registers the batch GET resources)
        )
        from batchsvc.health import register_check
        from batchsvc.metrics import register_collector

        register_check("workers", health.Workers)
        register_collector(health.collect)
