"""Answers compressed with gzip for clients that accept it."""

import gzip
import secrets

from django.middleware import gzip as django_gzip
from django.utils.cache import patch_vary_headers

LEVEL = 1
"""zlib's fastest level, nginx's default for dynamic answers: Django's level 6 spends
several times the CPU on a bulk answer's JSON for a few per cent fewer bytes (see the
README's runs ingestion figures)."""


class GZipMiddleware(django_gzip.GZipMiddleware):
    """Django's GZipMiddleware, compressing whole bodies at :data:`LEVEL`. Like
    Django's, it pads the gzip header with a random file name of up to
    ``max_random_bytes`` bytes (Django's mitigation of BREACH); streamed bodies are
    left to Django's own code."""

    def process_response(self, request, response):
        if response.streaming:
            return super().process_response(request, response)
        if len(response.content) < 200 or response.has_header("Content-Encoding"):
            return response
        patch_vary_headers(response, ("Accept-Encoding",))
        if not django_gzip.re_accepts_gzip.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
            return response
        compressed = compress(response.content, max_random_bytes=self.max_random_bytes)
        if len(compressed) >= len(response.content):
            return response
        response.content = compressed
        response.headers["Content-Length"] = str(len(compressed))
        etag = response.get("ETag")
        if etag and etag.startswith('"'):
            response.headers["ETag"] = "W/" + etag
        response.headers["Content-Encoding"] = "gzip"
        return response


def compress(content: bytes, *, max_random_bytes: int) -> bytes:
    """One gzip member at :data:`LEVEL`, its header naming a file of random length."""
    data = gzip.compress(content, compresslevel=LEVEL, mtime=0)
    if not max_random_bytes:
        return data
    header = bytearray(data[:10])
    header[3] = gzip.FNAME
    name = b"a" * secrets.randbelow(max_random_bytes) + b"\x00"
    return bytes(header) + name + data[10:]
