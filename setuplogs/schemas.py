"""The wire schema of a log line: the one set of rules for the single and the batch
append, and the source of their OpenAPI schema."""

import datetime as dt
import functools
from typing import Annotated

import msgspec
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from batchsvc.api.schemas import NUL_FREE, as_utc, patterned, refuse_characters
from setuplogs.models import CLIENT_ID_MAX, LogLevel

# Accepted spellings of a level, lower-cased; older agents say "warn".
LEVEL_ALIASES = {**{level: level for level in LogLevel.values}, "warn": LogLevel.WARNING.value}
LEVELS_TEXT = ", ".join(LogLevel.values)
STORED_LEVELS = frozenset(LogLevel.values)

Level = Annotated[
    str,
    msgspec.Meta(
        description=f"One of {LEVELS_TEXT} (any case; `warn` means warning).",
        extra_json_schema={"enum": list(LEVEL_ALIASES), "examples": ["info"]},
    ),
]
Message = Annotated[
    str,
    msgspec.Meta(
        description="At most LOG_MESSAGE_MAX bytes of UTF-8 (default 65536), without the NUL "
        "character (PostgreSQL cannot store it): a line with one is refused, as a run is."
    ),
    NUL_FREE,
]
Timestamp = Annotated[
    dt.datetime,
    msgspec.Meta(
        extra_json_schema={"format": "date-time"},
        description="When the client logged the line (default: when the server got it). "
        "ISO 8601; without a time zone it is read as UTC.",
    ),
]
# The server's own lines (the "client dropped N lines" warning) take client_ids in
# this namespace, so that no client line can pass for one. A msgspec ``pattern``, not
# batchsvc.api.schemas.refusing: a pattern is checked only on what is decoded, while the
# server builds its own LogLineIn with a reserved client_id, and __post_init__ would
# refuse that too.
RESERVED_CLIENT_ID_PREFIX = "dropped:"
CLIENT_ID_PATTERN = rf"^(?!{RESERVED_CLIENT_ID_PREFIX})[^\x00]*$"
ClientId = Annotated[
    str,
    patterned(
        CLIENT_ID_PATTERN,
        f"must not start with {RESERVED_CLIENT_ID_PREFIX!r} or contain the NUL character",
        max_length=CLIENT_ID_MAX,
        description="The client's id for the line, unique within the run: a line whose "
        "client_id the run already holds is a duplicate and is not stored again.",
    ),
]


@functools.cache
def message_max() -> int:
    """LOG_MESSAGE_MAX, read once rather than for each of a batch's 1000 lines."""
    return settings.LOG_MESSAGE_MAX


@receiver(setting_changed)
def _reread_message_max(*, setting, **kwargs):
    if setting == "LOG_MESSAGE_MAX":
        message_max.cache_clear()


def normalize_level(value: str) -> str:
    """The stored level for any accepted spelling; ValueError for anything else."""
    level = LEVEL_ALIASES.get(value.lower())
    if level is None:
        raise ValueError(f"level must be one of {LEVELS_TEXT}, not {value!r}")
    return level


class LogLineIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One log line as a client sends it. A key it does not know fails the line."""

    message: Message
    level: Level = LogLevel.INFO.value
    timestamp: Timestamp | None = None
    client_id: ClientId = ""

    def __post_init__(self):
        refuse_characters(self)  # PostgreSQL text cannot hold NUL
        if self.level not in STORED_LEVELS:  # the common case costs one lookup
            self.level = normalize_level(self.level)
        self.timestamp = as_utc(self.timestamp, "timestamp")
        limit = message_max()
        # Encoding is only needed when the text could be over: a character is at
        # most 4 bytes of UTF-8.
        if len(self.message) * 4 > limit and len(self.message.encode()) > limit:
            raise ValueError(f"message is longer than the limit of {limit} bytes")


class LogBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The batch append's body: its lines kept raw for the bulk engine to decode one
    by one, and how many the client dropped."""

    logs: list[msgspec.Raw] | None = None
    dropped: Annotated[int, msgspec.Meta(ge=0)] = 0


# Response bodies. They validate nothing on the way in; they describe the
# responses in the OpenAPI schema, and tests decode real responses with them.
class SkippedLine(msgspec.Struct):
    index: int
    error: str


class LogBatchResult(msgspec.Struct, forbid_unknown_fields=True):
    success: bool
    logs_added: int
    duplicates: int
    skipped: list[SkippedLine]


class LogLineOut(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    timestamp: str
    level: str
    message: str
    client_id: str
    received_at: str
