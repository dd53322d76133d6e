"""Who may see and change what: the one rule every model with an owner follows.

Each such model's QuerySet mixes in :class:`OwnedQuerySet` and names the path to
its owner (``owner_field``). Views, batch-GET resources, services and the admin all
start from ``visible_to(user)`` (reads) or ``owned_by(user)`` (writes), so the rule
is written once, here, and another owner's object is indistinguishable from a
missing one.
"""

from django.db import models


class OwnedQuerySet(models.QuerySet):
    owner_field = "owner"

    def visible_to(self, user):
        """What ``user`` may read: their own objects, or every object for staff."""
        if user.is_staff:
            return self
        return self.owned_by(user)

    def owned_by(self, user):
        """What ``user`` may change: their own objects only, staff included, so that
        a staff agent writing a name it has not used never lands in someone else's."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(**{self.owner_field: user})

    def of_owner(self, username: str):
        """Objects owned by the user named ``username`` (within this QuerySet)."""
        return self.filter(**{f"{self.owner_field}__username": username})


class Ambiguous(Exception):
    """Several owners' objects answer to the name, and none is the user's."""


def choose(user, candidates: list):
    """Of the objects a user may see that share one name (a run_id is unique per
    owner only), the one ``user`` means: their own, else the only one. Raises
    :class:`Ambiguous` when several other owners' objects share it."""
    mine = [obj for obj in candidates if getattr(obj, "owner_id", None) == user.pk]
    if mine or len(candidates) == 1:
        return (mine or candidates)[0]
    raise Ambiguous
