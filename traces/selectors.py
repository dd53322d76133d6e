"""Reads for runs that take more than a line: which run a user means by a run_id."""

from batchsvc.api.errors import ApiError, Conflict
from batchsvc.api.ownership import Ambiguous, choose
from traces.models import Run


def run_for(user, run_id: str, *, owner: str | None = None, write: bool = False, runs=None) -> Run:
    """The run ``user`` means by ``run_id``, or a 404 exactly like a missing one.

    run_ids are unique per owner. Writes reach the user's own run only. Reads reach
    what the user may see: for staff, their own run of that name first, else the
    only owner's; when several owners use it, a 409 asks for ``owner``, which
    narrows the search to one owner's runs. ``runs`` is the QuerySet to look in
    (to choose its columns), all runs by default.
    """
    runs = Run.objects.all() if runs is None else runs
    runs = runs.owned_by(user) if write else runs.visible_to(user)
    runs = runs.filter(run_id=run_id)
    if owner:  # "owner=" chooses no one, as if absent
        runs = runs.of_owner(owner)
    found = list(runs)  # one per owner at most
    if not found:
        raise run_not_found(run_id)
    try:
        return choose(user, found)
    except Ambiguous:
        owners = Run.objects.filter(pk__in=[run.pk for run in found])
        names = sorted(map(str, owners.values_list("owner__username", flat=True)))
        raise Conflict(
            f"Several owners use run_id {run_id!r}; add owner=<username> to choose one.",
            details={"run_id": run_id, "owners": names},
        ) from None


def run_not_found(run_id: str) -> ApiError:
    return ApiError(f"No run with run_id {run_id!r}.", details={"run_id": run_id}, status_code=404)
