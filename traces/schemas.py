"""The wire schema of a run: the one set of validation rules for every way a run
comes in (single POST, both batch endpoints, PATCH, import_runs) and the source of
the OpenAPI schema for them."""

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from django.conf import settings

from batchsvc.api.schemas import (
    NUL_AND_SLASH_FREE,
    NUL_FREE,
    as_utc,
    json_object_text,
    refuse_characters,
    refuse_nul_in_json,
)
from traces.models import ERROR_SUMMARY_MAX, NAME_MAX, RunStatus
from traces.paths import DEPTH_MAX, UnsafePath, trace_path

# Text a run stores has no NUL character (PostgreSQL refuses it), and a run_id is
# a URL path segment (/api/v1/runs/<run_id>/): no "/" in it. The structs'
# __post_init__ checks both (refuse_characters).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX), NUL_FREE]
OptionalName = Annotated[str, msgspec.Meta(max_length=NAME_MAX), NUL_FREE] | None
# Nor . or .., which a URL path resolves away (/runs/./ is the list).
NOT_DOTS = msgspec.Meta(extra_json_schema={"not": {"enum": [".", ".."]}})
RunId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=NAME_MAX), NUL_AND_SLASH_FREE, NOT_DOTS
]
OptionalRunId = (
    Annotated[str, msgspec.Meta(max_length=NAME_MAX), NUL_AND_SLASH_FREE, NOT_DOTS] | None
)
RUN_ID_IN_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_MAX,
    "pattern": r"^[^/\x00]+$",
    "not": {"enum": [".", ".."]},
}
"""A run_id as a URL path segment: what a run's run_id may be."""
ErrorSummary = Annotated[str, msgspec.Meta(max_length=ERROR_SUMMARY_MAX), NUL_FREE] | None
Timestamp = Annotated[
    dt.datetime,
    msgspec.Meta(
        extra_json_schema={"format": "date-time"},
        description="ISO 8601; without a time zone it is read as UTC.",
    ),
]
JSONObject = dict[str, Any] | None
# In a run as it arrives, a JSON object is kept as the text the client sent and
# stored as it is: no dicts built, no encoding again (see batchsvc.api.schemas.JSONText).
JSONObjectText = Annotated[
    msgspec.Raw,
    msgspec.Meta(extra_json_schema={"type": ["object", "null"]}, description="A JSON object."),
]
Status = RunStatus


def _null() -> msgspec.Raw:
    return msgspec.Raw(b"null")


def _check_json(name: str, value: dict | None) -> None:
    if value is not None:
        refuse_nul_in_json(msgspec.json.encode(value), name)


def check_times(start_time: dt.datetime, end_time: dt.datetime | None) -> None:
    if end_time is not None and end_time < start_time:
        raise ValueError(
            f"end_time {end_time.isoformat()} is before start_time {start_time.isoformat()}"
        )


class RunChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The fields a PATCH may change; absent fields stay as they are. Any other
    field (event_id, run_id, a typo) is refused, not ignored."""

    status: Status | msgspec.UnsetType = msgspec.UNSET
    end_time: Timestamp | msgspec.UnsetType | None = msgspec.UNSET
    metrics_json: JSONObject | msgspec.UnsetType = msgspec.UNSET
    context_json: JSONObject | msgspec.UnsetType = msgspec.UNSET
    error_summary: ErrorSummary | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self):
        refuse_characters(self)
        if isinstance(self.end_time, dt.datetime):
            self.end_time = as_utc(self.end_time, "end_time")
        for name in ("metrics_json", "context_json"):
            value = getattr(self, name)
            if value is not msgspec.UNSET:
                _check_json(name, value)

    def as_fields(self) -> dict[str, Any]:
        """The fields that were sent, as model field values."""
        changes = {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if getattr(self, name) is not msgspec.UNSET
        }
        if "error_summary" in changes and changes["error_summary"] is None:
            changes["error_summary"] = ""
        return changes


class RunIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One run as an agent reports it. A key it does not know fails the run, named
    (with the field a camelCase spelling meant): a silently dropped key is lost data."""

    event_id: uuid.UUID
    run_id: RunId
    parent_run_id: OptionalRunId = None
    agent_name: Name
    job_type: Name
    product: OptionalName = None
    git_repo: OptionalName = None
    git_branch: OptionalName = None
    git_commit: OptionalName = None
    status: Status = RunStatus.RUNNING.value
    start_time: Timestamp
    end_time: Timestamp | None = None
    metrics_json: JSONObjectText = msgspec.field(default_factory=_null)
    context_json: JSONObjectText = msgspec.field(default_factory=_null)
    error_summary: ErrorSummary = None

    def __post_init__(self):
        refuse_characters(self)
        for name, value in (("run_id", self.run_id), ("parent_run_id", self.parent_run_id)):
            if value in (".", ".."):
                raise ValueError(f"{name}: must not be {value} (it is a URL path segment)")
        self.start_time = as_utc(self.start_time, "start_time")
        self.end_time = as_utc(self.end_time, "end_time")
        check_times(self.start_time, self.end_time)
        self.metrics_json = json_object_text(self.metrics_json, "metrics_json")
        self.context_json = json_object_text(self.context_json, "context_json")


# The answer of the batch endpoints: what runs_ingest returns and the renderer
# encodes as it is, and the source of its OpenAPI schema.
class RunItemResult(msgspec.Struct):
    index: int
    event_id: str | None
    run_id: str | None
    result: Literal["created", "existing", "failed", "rolled_back"]


class RunItemError(msgspec.Struct):
    index: int
    event_id: str | None
    error: str


class RunBatchResult(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Per-item outcome of a runs batch, in request order, plus the counts."""

    runs: list[RunItemResult]
    total: int
    created: int
    existing: int
    failed: int
    errors: list[RunItemError]
    rolled_back: bool = False
    dry_run: bool = False
    error: Annotated[str, msgspec.Meta(description="Why a refused batch (400) was refused.")] | (
        msgspec.UnsetType
    ) = msgspec.UNSET
    request_id: str | msgspec.UnsetType = msgspec.UNSET

    def stored_counts(self) -> dict[str, int]:
        """The counts by what the database holds now: a rolled-back batch created
        nothing, and its would-be-created items are ``rolled_back``."""
        counts = {"created": self.created, "existing": self.existing, "failed": self.failed}
        rolled_back = sum(item.result == "rolled_back" for item in self.runs)
        return {**counts, "rolled_back": rolled_back} if rolled_back else counts

    def failed_only(self) -> "RunBatchResult":
        """The same answer listing only the failed items; the counts still cover all."""
        return msgspec.structs.replace(
            self, runs=[item for item in self.runs if item.result == "failed"]
        )


# Trace files ----------------------------------------------------------------


# The names the schema documents: portable ones, which every storage reads alike.
# The rules (traces.paths) take more (any letter, say) and refuse what could leave
# the root; a pattern could not say that, but generated from this, a name is valid.
PORTABLE_NAME = "[A-Za-z0-9_][A-Za-z0-9_. -]{0,99}"
PORTABLE_NOTE = (
    "Documented as portable names (letters, digits, _ . - and space, not starting with "
    "a dot or a space); others are taken when they cannot leave the root."
)


class TraceFileIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One trace file to write under the trace root. ``output_directory`` is a
    relative path and ``file_name`` one name: absolute paths, ``..`` in any
    spelling, backslashes, drive letters, control characters and names over 255
    bytes are refused. The same rules hold for the single and the batch endpoint.
    A key it does not know fails the file (``traceData``: did you mean trace_data?)."""

    trace_data: Annotated[str, msgspec.Meta(min_length=1)]
    file_name: Annotated[
        str,
        msgspec.Meta(
            description="A name, not a path. " + PORTABLE_NOTE,
            extra_json_schema={"pattern": f"^{PORTABLE_NAME}$"},
        ),
    ]
    output_directory: (
        Annotated[
            str,
            msgspec.Meta(
                description="Relative to the storage root; empty or null for the root. "
                + PORTABLE_NOTE,
                extra_json_schema={
                    "pattern": f"^({PORTABLE_NAME}(/{PORTABLE_NAME}){{0,{DEPTH_MAX - 1}}})?$"
                },
            ),
        ]
        | None
    ) = None
    run_id: OptionalName = None

    def __post_init__(self):
        try:
            trace_path(self.output_directory, self.file_name)
        except UnsafePath as exc:
            raise ValueError(str(exc)) from None
        limit = settings.TRACE_MAX_BYTES
        # UTF-8 takes at most 4 bytes a character: encode only when it could matter.
        if len(self.trace_data) * 4 > limit and len(self.content) > limit:
            raise ValueError(f"trace_data is larger than the limit of {limit} bytes")

    @property
    def path(self) -> str:
        """Where the file goes, relative to the storage root."""
        return trace_path(self.output_directory, self.file_name)

    @property
    def content(self) -> bytes:
        return self.trace_data.encode()


# Response bodies of the write endpoints: documentation, and a test decodes real
# responses with them (unknown fields forbidden) so they cannot drift.
class TraceWriteResult(msgspec.Struct, forbid_unknown_fields=True):
    success: bool
    id: int
    file_name: str
    file_path: str
    size: int
    bytes_written: int
    sha256: str


class TraceFileItemResult(msgspec.Struct, forbid_unknown_fields=True):
    index: int
    id: int | None
    file_name: str | None
    success: bool
    file_path: str | None
    size: int | None
    bytes_written: int | None
    sha256: str | None
    error: str | None


class TraceBatchSummary(msgspec.Struct, forbid_unknown_fields=True):
    total_files: int
    successful: int
    failed: int
    total_bytes: int
    processing_time_ms: float


class TraceBatchResult(msgspec.Struct, forbid_unknown_fields=True):
    success: bool
    summary: TraceBatchSummary
    results: list[TraceFileItemResult]
