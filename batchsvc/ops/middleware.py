"""The outermost middleware: every request gets an id, one log line and its metrics."""

import logging
import re
import time
import uuid

from django.conf import settings
from django.core.signals import request_finished
from django.dispatch import receiver
from django.utils.functional import SimpleLazyObject, empty

from batchsvc.ops import logs, metrics

logger = logging.getLogger("batchsvc.requests")

# What a proxy or a client may pass on: long enough for any tracing id, and nothing
# that could break a log line or a header.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")

# A database or Redis outage is answered 503 (507 when its disk is full), and
# batchsvc.api.errors logs its cause once as a warning: not an error of ours.
OUTAGE_STATUSES = {503, 507}


def request_id_of(request) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestMiddleware:
    """Binds the request id for every log line the request writes, answers it in the
    ``X-Request-ID`` header (and :func:`batchsvc.api.errors.error_body` puts it in error
    bodies), then writes the request's log line and counts it in the metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # A gthread worker reuses its threads, and their context, for request after request.
        logs.clear()
        request.id = request_id_of(request)
        logs.bind(request_id=request.id)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        finished(request, response, time.perf_counter() - started)
        return response


@receiver(request_finished)
def _forget_request(**kwargs):
    # Not on the way out of the middleware: Django logs a 4xx or 5xx after every
    # middleware has returned, and that line needs the request id too.
    logs.clear()


def finished(request, response, seconds: float) -> None:
    route = route_of(request)
    metrics.observe_request(
        route=route, method=request.method, status=response.status_code, seconds=seconds
    )
    status = response.status_code
    logger.log(
        logging.ERROR if status >= 500 and status not in OUTAGE_STATUSES else logging.INFO,
        "%s %s %s",
        request.method,
        request.path,
        status,
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "user": user_of(request),
        },
    )


def route_of(request) -> str:
    """The URL pattern's name (or its route), never the raw path: few values, one per
    endpoint, whatever ids the paths hold."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route
    if request.path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
        return "static"
    return "unmatched"


def user_of(request) -> int | None:
    """The authenticated user's id, if authentication ran: a session user nobody
    looked at is left unloaded, so that /healthz touches no database. An id, not a
    name: log lines travel further than the database does."""
    user = request.__dict__.get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.pk if user.is_authenticated else None
