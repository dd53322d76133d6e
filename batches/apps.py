from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self):
        from batches import (
            checks,  # noqa: F401  (registers the system checks)
            resources,  # noqa: F401  (registers the batch GET resources)
            retention,  # noqa: F401  (registers the batches purgers)
        )
        from batches.engine import monitoring
        from batchsvc.ops.health import register_check
        from batchsvc.ops.metrics import register_collector

        register_check("workers", monitoring.Workers)
        register_collector(monitoring.collect)
