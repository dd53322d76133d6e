"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work), with
django-health-check's checks and runner.

``/readyz`` runs every check registered with :func:`register_check`: batchsvc's own
(database reachable, migrations applied) and those the apps add in ``ready()``
(trace storage writable, a live worker while batches wait). It answers 200 when all
pass, 503 when one fails, with one line per check, and never a detail an outsider
could use (no host names, no paths, no versions).
"""

import asyncio
import dataclasses

from asgiref.sync import sync_to_async
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from batchsvc.ops.logs import current_request_id

_checks: dict[str, tuple[type[HealthCheck], dict]] = {}


def register_check(name: str, check: type[HealthCheck], **options) -> None:
    """Add a readiness check, run as ``check(**options)``; registered at start-up."""
    _checks[name] = (check, options)


class RequestThreadCheck(HealthCheck):
    """A check that runs ``check()`` on the request's own thread, and so on its
    database connection, kept between probes like any request's; django-health-check
    runs plain sync checks on a thread pool, each with a connection of its own."""

    async def run(self):
        await sync_to_async(self.check)()

    def check(self) -> None:
        raise NotImplementedError


@dataclasses.dataclass
class Migrations(RequestThreadCheck):
    """Every migration on disk is applied: a process started before ``migrate`` ran
    (or a database restored from an older backup) is not ready."""

    alias: str = "default"

    def check(self):
        connection = connections[self.alias]
        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            raise ServiceUnavailable("the database cannot be read") from exc
        if plan:
            raise ServiceUnavailable(f"{len(plan)} migrations are not applied")


@never_cache
def healthz(request):
    """The process is up and answering; touches nothing else."""
    return JsonResponse({"status": "ok"})


class ReadinessView(HealthCheckView):
    """Always JSON, whatever the Accept header: probes are programs."""

    async def get(self, request, *args, **kwargs):
        names = list(_checks)
        checks = [check(**options) for check, options in _checks.values()]
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for check in checks))
        failed = any(result.error for result in results)
        body = {
            "status": "unavailable" if failed else "ok",
            "checks": {
                name: str(result.error) if result.error else "OK"
                for name, result in zip(names, results, strict=True)
            },
        }
        if failed and (request_id := current_request_id()):
            body["request_id"] = request_id
        return JsonResponse(body, status=503 if failed else 200)
