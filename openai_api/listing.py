"""Request parameters of this surface: list pages as OpenAI pages them (``after`` an
object's id, ``limit``, newest first), and the bodies of the create endpoints."""

from django.db.models import Q

from batches.models import BatchPriority
from batches.processors.lanes import OPTIONS as RATE_OPTIONS
from openai_api import ids
from openai_api.errors import OpenAIError

BATCH_FIELDS = ("input_file_id", "endpoint", "completion_window")
# batchsvc's own knobs, sent with the SDK's extra_body.
BATCH_EXTRAS = ("priority", "concurrency", *RATE_OPTIONS)
EXPIRES_AFTER = (3600, 2_592_000)


def listed(request, queryset, *, most: int, what: str, orders: bool = False, more=()):
    """``(objects, has_more)``: a page of ``queryset`` by ``?after=`` and ``?limit=``
    (1 to ``most``; default 20 for batches, ``most`` for files), newest first unless
    ``?order=asc`` where ``orders``. Query parameters other than those and ``more``
    are refused."""
    known_only(request.query_params, ("after", "limit", *(("order",) if orders else ()), *more))
    limit = whole(request.query_params.get("limit"), "limit", 1, most)
    limit = limit or (most if orders else 20)
    order = request.query_params.get("order", "desc") if orders else "desc"
    if order not in ("asc", "desc"):
        raise OpenAIError(f"order must be asc or desc, not {order!r}.", param="order")
    queryset = queryset.order_by(
        *(("created_at", "pk") if order == "asc" else ("-created_at", "-pk"))
    )
    if after := request.query_params.get("after"):
        queryset = queryset.filter(beyond(queryset, after, what, order))
    found = list(queryset[: limit + 1])
    return found[:limit], len(found) > limit


def beyond(queryset, after: str, what: str, order: str) -> Q:
    """The objects listed after the one named ``after``."""
    pk = ids.file_pk(after) if what == "File" else ids.batch_pk(after)
    mark = queryset.filter(pk=pk).values("created_at", "pk").first() if pk else None
    if mark is None:
        raise OpenAIError(f"after names no {what} object of this list: {after!r}.", param="after")
    if order == "asc":
        return Q(created_at__gt=mark["created_at"]) | Q(
            created_at=mark["created_at"], pk__gt=mark["pk"]
        )
    return Q(created_at__lt=mark["created_at"]) | Q(
        created_at=mark["created_at"], pk__lt=mark["pk"]
    )


def known_only(given, known) -> None:
    """Refuse the first of ``given``'s names that is not ``known``, as OpenAI does."""
    if unknown := set(given) - set(known):
        name = sorted(unknown)[0]
        raise OpenAIError(f"Unrecognized request argument supplied: {name}.", param=name)


def whole(raw, name: str, least: int, most: int) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and least <= int(raw) <= most):
        raise OpenAIError(
            f"{name} must be a whole number from {least} to {most}, not {raw!r}.", param=name
        )
    return int(raw)


def batch_create_fields(data) -> dict:
    """The keyword arguments of services.batch_create from a create body."""
    if not isinstance(data, dict):
        raise OpenAIError("The request body must be a JSON object.")
    known_only(data, (*BATCH_FIELDS, "metadata", "output_expires_after", *BATCH_EXTRAS))
    for name in BATCH_FIELDS:
        if not isinstance(data.get(name), str):
            raise OpenAIError(
                f"Missing required parameter: {name!r} (a string).",
                param=name,
                code="missing_required_parameter",
            )
    rates = {name: data[name] for name in RATE_OPTIONS if name in data}
    return {
        **{name: data[name] for name in BATCH_FIELDS},
        "metadata": data.get("metadata"),
        "output_expires_after": output_expires_after(data.get("output_expires_after")),
        "priority": data.get("priority", BatchPriority.NORMAL),
        "concurrency": data.get("concurrency"),
        "rate_options": rates,
    }


def output_expires_after(value) -> int | None:
    """A batch's ``output_expires_after`` (``{"anchor": "created_at", "seconds": N}``)
    as seconds, or None."""
    if value is None:
        return None
    seconds = value.get("seconds") if isinstance(value, dict) else None
    least, most = EXPIRES_AFTER
    if (
        not isinstance(value, dict)
        or set(value) != {"anchor", "seconds"}
        or value["anchor"] != "created_at"
        or not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not least <= seconds <= most
    ):
        raise OpenAIError(
            'output_expires_after must be {"anchor": "created_at", "seconds": N} with N a '
            f"whole number from {least} to {most}.",
            param="output_expires_after",
        )
    return seconds


def file_create_fields(data) -> dict:
    """The keyword arguments of services.file_create from a multipart form, but the
    upload itself; a field it does not take is refused."""
    known_only(data, ("file", "purpose", "expires_after[anchor]", "expires_after[seconds]"))
    return {"purpose": data.get("purpose"), "expires_after": expires_after(data)}


def expires_after(data) -> int | None:
    """A file's ``expires_after`` (multipart: ``expires_after[anchor]`` and
    ``expires_after[seconds]``) as seconds after its creation, or None."""
    anchor = data.get("expires_after[anchor]")
    seconds = data.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise OpenAIError("expires_after[anchor] must be created_at.", param="expires_after")
    return whole(seconds, "expires_after[seconds]", *EXPIRES_AFTER)
