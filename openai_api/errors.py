"""OpenAI's error shape, on this surface only: ``{"error": {"message", "type", "param",
"code"}}``, so that the openai SDK raises its own exceptions (BadRequestError,
NotFoundError, RateLimitError...). The sentence is the one the rest of the API gives
(batchsvc.api.errors makes it, database outages included); only the envelope differs."""

import json

from django.http import JsonResponse
from rest_framework import status

from batchsvc.api import errors
from batchsvc.api.errors import ApiError

TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
CODES = {401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}
# Headers of the first answer kept on the reshaped one.
KEPT_HEADERS = ("Retry-After", "WWW-Authenticate", "Allow")


class OpenAIError(ApiError):
    """A refusal naming the request parameter at fault and an error code."""

    def __init__(self, message: str, *, param=None, code=None, status_code=None, details=None):
        super().__init__(message, details=details, status_code=status_code)
        self.param = param
        self.openai_code = code


class NotFound(OpenAIError):
    status_code = status.HTTP_404_NOT_FOUND


def error_response(status_code: int, message: str, *, param=None, code=None) -> JsonResponse:
    error_type = TYPES.get(status_code, "server_error" if status_code >= 500 else "api_error")
    body = {
        "error": {
            "message": message,
            "type": error_type,
            "param": param,
            "code": code or CODES.get(status_code),
        }
    }
    response = JsonResponse(body, status=status_code)
    if status_code == 409:
        # The openai SDK retries a 409 by default; a conflict here does not pass.
        response["x-should-retry"] = "false"
    return response


def exception_handler(exc, context):
    """batchsvc's exception handler, its answer reshaped."""
    response = errors.exception_handler(exc, context)
    if response is None:
        return None
    reshaped = error_response(
        response.status_code,
        message_of(response),
        param=getattr(exc, "param", None),
        code=getattr(exc, "openai_code", None),
    )
    for header in KEPT_HEADERS:
        if response.has_header(header):
            reshaped[header] = response[header]
    return reshaped


def message_of(response) -> str:
    """The sentence of batchsvc's answer: its JSON envelope's, or its text (an outage
    outside /api/ is answered as plain text)."""
    data = getattr(response, "data", None)
    if data is None:
        try:
            data = json.loads(response.content)
        except ValueError:
            return response.content.decode(errors="replace").strip()
    return data.get("error", "The request failed.") if isinstance(data, dict) else str(data)


def not_found(request, *args, **kwargs):
    """Any URL under /openai/v1/ that names no endpoint."""
    message = f"Unknown request URL: {request.method} {request.path}."
    return error_response(404, message, code="unknown_url")
