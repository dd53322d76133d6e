"""Failure groups: the failed items of a batch whose errors differ only in numbers,
ids and quoted values share a group, so that 3,000 failures read as the two or three
causes they are, and one cause can be retried on its own. Pure code, no Django."""

import hashlib
import re

# Folded, in this order: quoted values of one word (a sentence in quotes is kept, its
# numbers folded), UUIDs, long hexadecimal ids, words mixing
# letters and digits (request ids, keys), then any number. An HTTP status stays: a 400
# and a 503 are different causes.
_FOLDS = (
    (re.compile(r"'[^'\s]*'|\"[^\"\s]*\"|`[^`\s]*`"), "<value>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<id>"),
    (re.compile(r"\b(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[\w-]{6,}\b"), "<id>"),
    (re.compile(r"(?<!HTTP )(?<![\w<])\d+(?:[.,]\d+)*"), "<n>"),
)
KEY_LENGTH = 12


def normalised(error: str) -> str:
    """The error with its numbers, ids and quoted values folded, on one line."""
    text = " ".join(error.split())
    for pattern, placeholder in _FOLDS:
        text = pattern.sub(placeholder, text)
    return text


def group_key(error: str) -> str:
    """The failure group of an error: a short stable key ("" for no error)."""
    if not error:
        return ""
    return hashlib.sha256(normalised(error).encode()).hexdigest()[:KEY_LENGTH]
