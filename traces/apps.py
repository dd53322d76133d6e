from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Runs and traces"

    def ready(self):
        from health_check.checks import Storage

        from batchsvc.ops.health import register_check
        from traces import (
            resources,  # noqa: F401  (registers runs for the batch GET)
            retention,  # noqa: F401  (registers the runs and files purgers)
        )

        register_check("trace_storage", Storage, alias="traces")
