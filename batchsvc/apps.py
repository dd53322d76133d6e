from django.apps import AppConfig


class BatchsvcConfig(AppConfig):
    name = "batchsvc"
    verbose_name = "batchsvc"

    def ready(self):
        from health_check.checks import Database

        from batchsvc import checks  # noqa: F401  (registers the system checks)
        from batchsvc.ops.health import Migrations, register_check

        register_check("database", Database)
        register_check("migrations", Migrations)
