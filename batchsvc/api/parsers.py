"""JSON in and out with msgspec: several times faster than the standard library on
the 1000-item bodies the bulk endpoints live on, and strict about what JSON is."""

import zlib

import msgspec
from django.conf import settings
from django.utils.encoding import force_str
from django.utils.functional import Promise
from rest_framework import negotiation, parsers, renderers
from rest_framework.exceptions import NotAcceptable, ParseError

from batchsvc.api.errors import ApiError, PayloadTooLarge

_decoder = msgspec.json.Decoder()


def read_body(stream, limit: int) -> bytes:
    """Read at most ``limit`` bytes of a request body, or refuse it with a 413.

    DRF hands parsers the raw WSGI stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    check never runs for them; this is that check, answered in our format.
    """
    if stream is None:
        return b""
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    return body


def is_gzipped(content_encoding: str) -> bool:
    """Whether a body comes gzip-compressed; a 415 for a coding we cannot read."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return False
    if coding in ("gzip", "x-gzip"):
        return True
    raise ApiError(
        f"Content-Encoding {content_encoding.strip()!r} is not supported; send the body "
        "as it is or compressed with gzip.",
        status_code=415,
    )


def gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body decompressed, refused with a 413 as soon as it passes ``limit``
    bytes: never more than ``limit + 1`` bytes are inflated, however much the body
    claims (a gzip bomb costs what its first ``limit`` bytes cost). Several gzip
    members in a row, as ``cat a.gz b.gz`` writes, are one body."""
    parts, size, rest = [], 0, body
    while rest:
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            part = inflater.decompress(rest, limit + 1 - size)
        except zlib.error:
            raise ParseError("Request body is not valid gzip.") from None
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(
                f"Request body is larger than the limit of {limit} bytes once decompressed."
            )
        if not inflater.eof:
            raise ParseError("Request body is not valid gzip: it ends too early.")
        parts.append(part)
        rest = inflater.unused_data
    return b"".join(parts)


def decode_json(body: bytes):
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ParseError(f"Request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise too_deep() from None


def too_deep() -> ParseError:
    return ParseError("Request body is nested too deeply to be read.")


class JSONParser(parsers.BaseParser):
    media_type = "application/json"
    limit_setting = "MAX_REQUEST_BYTES"
    """The setting holding this parser's body limit: an endpoint taking larger
    bodies (trace files) names its own."""

    def parse(self, stream, media_type=None, parser_context=None):
        return decode_json(self.read(stream, parser_context))

    def read(self, stream, parser_context) -> bytes:
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        gzipped = is_gzipped(meta.get("HTTP_CONTENT_ENCODING", ""))
        declared = meta.get("CONTENT_LENGTH")
        limit = getattr(settings, self.limit_setting)
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        body = read_body(stream, limit)
        if gzipped:
            body = gunzip(body, limit)
        if not body.strip():
            raise ParseError("Request body is empty; a JSON object was expected.")
        return body


def json_body_of(request) -> bytes:
    """The body :class:`BulkJSONParser` or :class:`RawJSONParser` left, or a 400 when
    no parser ran: DRF hands a view ``{}`` for a request without a body or without
    a Content-Type, which is neither a body nor JSON."""
    data = request.data
    if isinstance(data, bytes | msgspec.Raw):
        return data
    raise ParseError(
        "Request body is empty or not declared as JSON; send a JSON object with "
        "Content-Type: application/json."
    )


class JSONBody(bytes):
    """A bulk request body, kept as bytes by :class:`BulkJSONParser`."""


class BulkJSONParser(JSONParser):
    """Leaves the body as bytes, for :func:`batchsvc.api.bulk.read_envelope` to decode
    once, its items kept as raw JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        return JSONBody(self.read(stream, parser_context))


class RawJSONParser(JSONParser):
    """Leaves a one-item body as raw JSON (``msgspec.Raw``), its syntax checked, for
    the view's service to decode once with its schema, as a bulk item is."""

    def parse(self, stream, media_type=None, parser_context=None):
        return decode_raw(self.read(stream, parser_context))


def decode_raw(body: bytes) -> msgspec.Raw:
    try:
        return msgspec.json.decode(body, type=msgspec.Raw)
    except msgspec.DecodeError as exc:
        raise ParseError(f"Request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise too_deep() from None


def _enc_hook(obj):
    # msgspec encodes exact str only; DRF's ErrorDetail is a str subclass.
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, Promise):
        return force_str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise NotImplementedError(f"Cannot encode {type(obj).__name__} as JSON.")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="number")


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return _encoder.encode(data)


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, with a ``?format=`` the view does not offer refused as
    406 Not Acceptable, saying which it offers; DRF answers 404, as if the page
    itself were missing."""

    def filter_renderers(self, renderers, format):
        offered = [renderer for renderer in renderers if renderer.format == format]
        if not offered:
            formats = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise NotAcceptable(
                f"?format={format} is not offered here; the formats are: {formats}."
            )
        return offered
