"""Reads for log lines."""

from batchsvc.errors import ApiError
from traces.models import Run


def run_for_logs(run_id: str) -> Run:
    """The run whose lines are read or written, or a 404.

    The 404 names the run in ``details`` so that a client can tell an unknown run
    from a server without the endpoint (batchsvc.client.LogBatcher does).
    """
    run = Run.objects.only("pk", "run_id", "status").filter(run_id=run_id).first()
    if run is None:
        raise run_not_found(run_id)
    return run


def run_not_found(run_id: str) -> ApiError:
    return ApiError(f"No run with run_id {run_id!r}.", details={"run_id": run_id}, status_code=404)
