"""The resources ``POST /api/v1/batch/get`` can fetch, registered by the apps that own them.

batchsvc knows no app by name: each app registers its resources while Django starts,
and the batch GET finds them here by name. The valid ``resource_type`` values, in
requests, error messages and the OpenAPI schema, are the registered names.

Registering a resource takes a few lines in the app, in a ``resources.py`` imported
from its ``AppConfig.ready()``::

    # batches/resources.py
    import uuid

    from batchsvc.api.resources import register
    from batches.models import Batch
    from batches.serializers import BatchSerializer

    register(
        "batches",
        serializer_class=BatchSerializer,
        visible_to=lambda user: Batch.objects.visible_to(user),
        id_type=uuid.UUID,
    )

    # batches/apps.py
    class BatchesConfig(AppConfig):
        name = "batches"

        def ready(self):
            from batches import resources  # noqa: F401  (registers the batch GET resources)

The arguments:

- ``visible_to(user)`` returns the QuerySet of what ``user`` may see. An id outside it
  answers 404, exactly like an id that does not exist. Put the ``select_related`` /
  ``prefetch_related`` the serializer needs here: the batch GET runs this QuerySet once
  per request, filtered with ``<lookup_field>__in``, whatever the number of ids.
- ``lookup_field`` is the model field the ids are matched against: ``"pk"`` by default
  (``"run_id"`` for runs).
- ``id_type`` is what msgspec converts each id to, and so what makes a bad id a 400
  naming it: :data:`PositiveId` by default (an integer primary key, ``"42"`` accepted
  too), ``uuid.UUID`` for a UUID primary key, an ``Annotated[str, msgspec.Meta(...)]``
  for a text key.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework import serializers

from batchsvc.api.errors import ApiError
from batchsvc.api.ownership import Ambiguous, choose
from batchsvc.api.schemas import describe

PositiveId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
"""An integer primary key: a positive number a bigint column can hold."""


@dataclass(frozen=True)
class Resource:
    name: str
    serializer_class: type[serializers.BaseSerializer]
    visible_to: Callable[[Any], models.QuerySet]
    lookup_field: str = "pk"
    id_type: Any = PositiveId

    def convert_ids(self, raw_ids: Sequence) -> list:
        """The ids as ``id_type`` values, or a 400 naming the first bad one."""
        with suppress(msgspec.ValidationError):
            return msgspec.convert(raw_ids, list[self.id_type])
        try:
            # An integer id may come as a JSON string of digits ("42"), but not in the
            # other spellings a lax conversion takes ("1e3", "1.0").
            return msgspec.convert(list(map(_digits_to_int, raw_ids)), list[self.id_type])
        except msgspec.ValidationError as exc:
            problem = describe(exc)
            where = "ids" if problem.startswith("[") else "ids: "
            raise ApiError(
                f"Bad id for resource_type {self.name!r}: {where}{problem}.",
                details={"resource_type": self.name, "lookup_field": self.lookup_field},
            ) from None

    def fetch(self, user, ids: Sequence, *, owner: str | None = None) -> tuple[dict, set]:
        """The objects ``user`` may see among ``ids``, keyed by their lookup value,
        in one query (plus the prefetches ``visible_to`` declares); and the ids that
        name objects of several owners (a run_id is unique per owner only): staff
        get their own object, or choose an ``owner``, or are told it is ambiguous."""
        matching = self.visible_to(user).filter(**{f"{self.lookup_field}__in": set(ids)})
        if owner is not None:
            matching = matching.of_owner(owner)
        by_key = defaultdict(list)
        for obj in matching:
            by_key[getattr(obj, self.lookup_field)].append(obj)
        found, ambiguous = {}, set()
        for key, candidates in by_key.items():
            try:
                found[key] = choose(user, candidates)
            except Ambiguous:
                ambiguous.add(key)
        return found, ambiguous


def _digits_to_int(value):
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value


# Written only while Django starts (AppConfig.ready) and read-only after, like
# Django's own app and admin registries: nothing here changes between requests.
_registry: dict[str, Resource] = {}


def register(name: str, **options) -> Resource:
    """Make ``name`` fetchable by the batch GET (see the module docstring)."""
    if name in _registry:
        raise ImproperlyConfigured(f"A batch GET resource named {name!r} is already registered.")
    resource = Resource(name, **options)
    _registry[name] = resource
    return resource


def unregister(name: str) -> None:
    """Forget ``name`` (for tests that register a resource of their own)."""
    _registry.pop(name, None)


def names() -> list[str]:
    return sorted(_registry)


def get(name: Any) -> Resource:
    """The resource registered as ``name``, or a 400 listing the valid names."""
    resource = _registry.get(name) if isinstance(name, str) else None
    if resource is None:
        raise ApiError(
            f"Unknown resource_type {name!r}; valid resource types: {', '.join(names())}.",
            details={"valid": names()},
        )
    return resource
