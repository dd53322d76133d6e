"""One error format for the whole API: ``{"error": "<sentence>", "details": ...}``.

Three layers produce it:

1. Services raise :class:`ApiError` (or a subclass) carrying the sentence and details.
2. DRF views hand every exception to :func:`exception_handler`, which turns DRF's own
   exceptions (404, 405, 415, parse errors, throttling...) and anything unexpected
   into the envelope.
3. :class:`ApiErrorMiddleware` catches what never reaches a DRF view under /api/
   (an unknown URL, Django's own 400 for a bad Host header) and rewrites it.

The database being unavailable is answered 503 with Retry-After on every route, by
the exception handler in DRF views, :class:`DatabaseUnavailableMiddleware` in other
views and :func:`server_error` in middleware (see batchsvc.ops.outages).
"""

import logging
import sys
from http import HTTPStatus

import msgspec
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.settings import api_settings

from batchsvc.ops.logs import current_request_id
from batchsvc.ops.outages import (
    REDIS_ERRORS,
    STORE_ERRORS,
    close_connections,
    describe,
    is_disk_full,
)

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """A client mistake a service detected: one sentence plus optional details."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, details=None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if status_code is not None:
            self.status_code = status_code


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def error_body(message: str, details=None) -> dict:
    body = {"error": message}
    if details is not None:
        body["details"] = details
    if request_id := current_request_id():
        body["request_id"] = request_id
    return body


def error_fields(result: msgspec.Struct, message: str) -> msgspec.Struct:
    """A refusal whose answer is a result of its own (a rolled-back batch, with its
    per-item outcomes): that result with the ``error`` sentence and ``request_id``
    every error body has. Its Struct declares both, unset by default."""
    return msgspec.structs.replace(
        result, error=message, request_id=current_request_id() or msgspec.UNSET
    )


def sentence(detail) -> str:
    text = str(detail).strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _envelope(exc: Exception, data) -> dict:
    if isinstance(exc, ApiError):
        return error_body(exc.message, exc.details)
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(data, list) and len(data) == 1:
            return error_body(sentence(data[0]))
        return error_body("The request is not valid; see details.", data)
    if isinstance(data, dict) and "detail" in data:
        return error_body(sentence(data["detail"]))
    return error_body(sentence(HTTPStatus(getattr(exc, "status_code", 400)).phrase), data)


def exception_handler(exc: Exception, context):
    if isinstance(exc, STORE_ERRORS):
        return database_error_response(context["request"], exc)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(_too_large_message())
    elif isinstance(exc, SuspiciousOperation):  # too many form fields or files, say
        exc = ApiError(sentence(f"The request was refused: {exc}"))
    # Imported here: rest_framework.views reads the renderer settings, which
    # import this package's parsers, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug. Log it with its traceback for operators
        # and answer a plain sentence, whatever DEBUG says.
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        return JsonResponse(error_body("Internal server error."), status=500)
    response.data = _envelope(exc, response.data)
    _render_as_json(context.get("request"))
    return response


def _render_as_json(request) -> None:
    """Render the error with the API's JSON renderer, whatever the view renders.

    The Swagger page renders HTML: its error page ran the template context
    processors, whose ``request.user`` authenticated the request a second time,
    outside DRF's error handling, so a malformed token became a 500.
    """
    if request is not None:
        renderer = api_settings.DEFAULT_RENDERER_CLASSES[0]()
        request.accepted_renderer = renderer
        request.accepted_media_type = renderer.media_type


def _too_large_message() -> str:
    return f"Request body is larger than the limit of {settings.MAX_REQUEST_BYTES} bytes."


class RefuseNulMiddleware:
    """Answer 400 to a URL with a NUL character (``%00``) in its path or query.

    PostgreSQL cannot hold NUL in text, so a lookup or filter carrying one
    (``/api/v1/runs/%00/``, ``?agent_name=%00``, an admin search) would fail in the
    database as a 500; no valid identifier contains one, so refuse it here, once,
    for every view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            message = "The URL must not contain the NUL character (%00)."
            if request.path.startswith("/api/"):
                return JsonResponse(error_body(message), status=400)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


class ApiErrorMiddleware:
    """Give JSON errors to /api/ requests that no DRF view answered."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            phrase = HTTPStatus(response.status_code).phrase
            return JsonResponse(error_body(sentence(phrase)), status=response.status_code)
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exception, Http404):
            return JsonResponse(error_body("Not found."), status=404)
        if isinstance(exception, PermissionDenied):
            return JsonResponse(error_body("Permission denied."), status=403)
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body(_too_large_message()), status=413)
        logger.exception("Unhandled error on %s", request.path, exc_info=exception)
        return JsonResponse(error_body("Internal server error."), status=500)


def database_error_response(request, exc: Exception) -> HttpResponse:
    """503 with Retry-After while the database (or Redis) cannot be reached or used;
    507 when it refused a write for want of space, which waiting does not cure."""
    retry_after = None if is_disk_full(exc) else settings.DB_UNAVAILABLE_RETRY_AFTER
    store = "Redis (CACHE_URL)" if isinstance(exc, REDIS_ERRORS) else "The database"
    if retry_after is None:
        status = HTTPStatus.INSUFFICIENT_STORAGE
        message = "The database is out of space (its disk is full), so this was not stored."
    else:
        status = HTTPStatus.SERVICE_UNAVAILABLE
        message = f"{store} is unavailable; try again in {retry_after} seconds."
    logger.warning("%s %s: %s (%s)", request.method, request.path, message, describe(exc))
    # Django closes a failed PostgreSQL connection when the request ends, but keeps
    # SQLite's whatever failed on it, and one opened read-only stays read-only.
    close_connections()
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body(message), status=status)
    else:
        # Plain text, not a template: the template context processors would ask
        # the database who the user is.
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    # The warning above says why; Django's own ERROR line for a 5xx, with the
    # traceback, would repeat it on every request of the outage.
    response._has_been_logged = True
    return response


class DatabaseUnavailableMiddleware:
    """Answer a database outage in a view that is not DRF's (the admin, the login
    page) with a 503, as the exception handler does for DRF views."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, STORE_ERRORS):
            return database_error_response(request, exception)
        return None


def server_error(request):
    """handler500. An exception raised in a middleware never reaches a
    process_exception (the session saved after the view, say); when it is a
    database outage it is still a 503. With DEBUG on, Django shows its own page."""
    exc = sys.exc_info()[1]
    if isinstance(exc, STORE_ERRORS):
        return database_error_response(request, exc)
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("Internal server error."), status=500)
    return defaults.server_error(request)
