"""Reads for log lines."""

from traces.models import Run
from traces.selectors import run_for


def run_for_logs(request, run_id: str, *, write: bool) -> Run:
    """The run whose lines ``request``'s user reads (its ``owner`` query parameter
    choosing among owners) or writes, or a 404 like a missing run's.

    The 404 names the run in ``details`` so that a client can tell an unknown run
    from a server without the endpoint (batchsvc.client.LogBatcher does).
    """
    return run_for(
        request.user,
        run_id,
        owner=None if write else request.query_params.get("owner"),
        write=write,
        runs=Run.objects.only("pk", "run_id", "status", "owner"),
    )
