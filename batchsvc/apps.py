from django.apps import AppConfig


class BatchsvcConfig(AppConfig):
    name = "batchsvc"
    verbose_name = "batchsvc"

    def ready(self):
        from batchsvc import checks  # noqa: F401  (registers the system checks)
