import msgspec
from django.conf import settings
from django.utils.functional import lazy
from django.utils.text import format_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from batches.models import NAME_MAX, Batch, Interaction
from batches.processors.base import options_help, processor_names
from batches.retention import batch_expires_at
from batches.selectors import (
    batch_attempts,
    batch_pace,
    batch_usage,
    batch_waiting_for,
    failure_groups,
    with_item_counts,
)
from batches.spreadsheets.rows import MAX_SKIPPED_LISTED
from batchsvc.api.errors import PayloadTooLarge
from batchsvc.api.flags import parse_bool


class PaceSerializer(serializers.Serializer):
    elapsed_seconds = serializers.FloatField(
        allow_null=True, help_text="since it started (until it ended)"
    )
    items_per_minute = serializers.FloatField(
        allow_null=True, help_text="items that ran per minute since it started"
    )
    items_per_minute_last_minute = serializers.FloatField(
        allow_null=True, help_text="the same over the last minute, while it is processing"
    )
    eta_seconds = serializers.IntegerField(
        allow_null=True, help_text="estimated time left, while it is processing"
    )


class WaitingSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=["worker", "concurrency", "rate_limit", "quota"],
        help_text="worker: none is live, or all their threads are busy; concurrency: the "
        "batch runs as many conversations as its concurrency allows; rate_limit: its "
        "processor is paused until `until`; quota: its owner runs as many items as their "
        "quota allows",
    )
    message = serializers.CharField(help_text="the same, as a sentence")
    until = serializers.DateTimeField(allow_null=True, help_text="for rate_limit: until when")


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField(help_text="summed over the items' answers")
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    model = serializers.CharField(allow_null=True, help_text="the model the batch asks for")
    estimated_cost = serializers.DecimalField(
        max_digits=20,
        decimal_places=6,
        allow_null=True,
        help_text="US dollars, from BATCH_MODEL_PRICES (null when it does not price the model)",
    )


class BatchSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pace = serializers.SerializerMethodField(
        help_text="how fast the batch goes, over the time it was processing"
    )
    progress = serializers.IntegerField(
        read_only=True,
        help_text="0-100: whole percent of the items that ran (succeeded or failed). "
        "Cancelled items do not count, so a cancelled batch shows how far it got; 100 "
        "only when every item ran.",
    )
    ended_progress = serializers.IntegerField(
        read_only=True,
        help_text="0-100: whole percent of the items that have ended, ran or cancelled; "
        "100 once nothing is left to do. ended_progress - progress is the cancelled share.",
    )
    expires_at = serializers.SerializerMethodField(
        help_text="when the finished batch and its results will be deleted; null while it "
        "runs, or while finished batches are kept forever"
    )

    class Meta:
        model = Batch
        fields = [
            "id",
            "name",
            "owner",
            "processor",
            "options",
            "priority",
            "concurrency",
            "status",
            "progress",
            "ended_progress",
            "total_items",
            "processed_items",
            "failed_items",
            "cancelled_items",
            "pace",
            "skipped_count",
            "skipped_rows",
            "source_name",
            "columns",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PaceSerializer)
    def get_pace(self, batch) -> dict:
        return batch_pace(batch)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires_at(self, batch) -> str | None:
        when = batch_expires_at(batch)
        return None if when is None else serializers.DateTimeField().to_representation(when)


class FailureGroupSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="the group's key, for retry-failed's group")
    error = serializers.CharField(
        help_text="the items' error, numbers, ids and quoted values folded"
    )
    count = serializers.IntegerField(help_text="failed items in the group")
    example_item = serializers.IntegerField(help_text="the id of one of them")
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)


class AttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="when the failed items were queued again")
    requeued = serializers.IntegerField(help_text="how many")
    group = serializers.CharField(help_text="the failure group retried (empty: all)")
    by = serializers.CharField(allow_null=True, help_text="who asked")


class ItemCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class BatchDetailSerializer(BatchSerializer):
    """One batch: its counters exact (from its items as they are now, with their count
    per status), what it waits for, the tokens its items used, its failures grouped
    by cause and its retries (each a few queries when read, so not in lists)."""

    item_counts = serializers.SerializerMethodField(help_text="its items in each status")
    waiting_for = serializers.SerializerMethodField(
        help_text="why an active batch does not start more of its conversations now; "
        "null when it is not waiting"
    )
    usage = serializers.SerializerMethodField(help_text="tokens used and estimated cost")
    failure_groups = serializers.SerializerMethodField(
        help_text="its failed items grouped by cause, largest first"
    )
    attempts = serializers.SerializerMethodField(help_text="its retries, oldest first")

    class Meta(BatchSerializer.Meta):
        fields = [
            *BatchSerializer.Meta.fields,
            "item_counts",
            "waiting_for",
            "usage",
            "failure_groups",
            "attempts",
        ]
        read_only_fields = fields

    def to_representation(self, batch):
        return super().to_representation(with_item_counts(batch))

    @extend_schema_field(ItemCountsSerializer)
    def get_item_counts(self, batch) -> dict:
        return batch.item_counts

    @extend_schema_field(FailureGroupSerializer(many=True))
    def get_failure_groups(self, batch) -> list:
        return FailureGroupSerializer(failure_groups(batch), many=True).data

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempts(self, batch) -> list:
        return AttemptSerializer(batch_attempts(batch), many=True).data

    @extend_schema_field(WaitingSerializer(allow_null=True))
    def get_waiting_for(self, batch) -> dict | None:
        waiting = batch_waiting_for(batch)
        return None if waiting is None else WaitingSerializer(waiting).data

    @extend_schema_field(UsageSerializer)
    def get_usage(self, batch) -> dict:
        return UsageSerializer(batch_usage(batch)).data


class SkippedRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="row number in the file (header = 1)")
    error = serializers.CharField(help_text='why it was skipped: "no question"')


class BatchCreatedSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField(source="id")
    status = serializers.CharField()
    total_items = serializers.IntegerField(help_text="the rows with a question")
    skipped_count = serializers.IntegerField(help_text="the rows without one, skipped")
    skipped_rows = SkippedRowSerializer(
        many=True, help_text=f"the first {MAX_SKIPPED_LISTED} skipped rows"
    )


@extend_schema_field(OpenApiTypes.BOOL)
class FlagField(serializers.Field):
    """A boolean form field, read by the project's one rule (batchsvc.api.flags)."""

    def to_internal_value(self, data):
        try:
            return parse_bool(data, default=False)
        except ValueError as exc:
            raise serializers.ValidationError(f"Form field {self.field_name} {exc}.") from None

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class JSONObjectTextField(serializers.Field):
    """A JSON object sent as the text of a form field (or as a small file part)."""

    def to_internal_value(self, data):
        if hasattr(data, "read"):
            data = data.read()
        if data in ("", b""):
            return {}
        try:
            value = msgspec.json.decode(data)
        except (msgspec.DecodeError, TypeError):
            value = None
        if not isinstance(value, dict):
            raise serializers.ValidationError(
                f"Form field {self.field_name} must be a JSON object given as text, "
                'such as {"delay": 0}.'
            )
        return value

    def to_representation(self, value):
        return value


def _text(name: str, help_text: str, **kwargs) -> serializers.CharField:
    """An optional text form field whose refusals are sentences naming it."""
    return serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=NAME_MAX,
        help_text=help_text,
        error_messages={
            "invalid": f"Form field {name} must be text.",
            "max_length": f"Form field {name} is longer than {NAME_MAX} characters.",
            "null": f"Form field {name} must be text.",
        },
        **kwargs,
    )


# The older upload form's fields: their name here -> the field they stand for.
FIELD_ALIASES = {"batchName": "name", "aiProvider": "processor"}
# Form fields that are processor options: form field -> key in options.
OPTION_FIELDS = {
    "lang": "lang",
    "searchProvider": "search_provider",
    "applyOverrides": "apply_overrides",
}


class BatchUploadSerializer(serializers.Serializer):
    """The multipart form of POST /batches/: what the view validates the upload with
    and what the schema documents, so the two cannot drift apart. The older form's names
    are accepted beside ours; an unknown or repeated field is refused."""

    file = serializers.FileField(
        help_text=".csv or .xlsx with a question column",
        allow_empty_file=True,  # the parser says "The file is empty."
        error_messages={
            "required": "Attach the spreadsheet (.csv or .xlsx) as the form field 'file'.",
            "invalid": "Form field file must be a file (.csv or .xlsx), not text.",
            "no_name": "Form field file must be a file with a name ending .csv or .xlsx.",
            "max_length": f"The file name is longer than {NAME_MAX} characters.",
        },
    )
    name = _text("name", "the batch's name (default: the file name)")
    batchName = _text("batchName", "the same as name (the older form's name for it)")
    processor = _text(
        "processor", "a processor of BATCH_PROCESSORS: echo, http, openai (default: echo)"
    )
    aiProvider = _text("aiProvider", "the same as processor (the older form's name for it)")
    options = JSONObjectTextField(
        required=False,
        help_text=format_lazy(
            "the processor's options, a JSON object as text; each processor takes its own "
            "(any other is a 400 listing them): {}",
            lazy(options_help, str)(),
        ),
    )
    lang = _text("lang", "the answers' language, given to the processor as options.lang")
    searchProvider = _text("searchProvider", "given to the processor as options.search_provider")
    applyOverrides = FlagField(
        required=False, help_text="given to the processor as options.apply_overrides"
    )
    priority = _text(
        "priority", "low, normal or high: orders this owner's batches (default: normal)"
    )
    concurrency = _text(
        "concurrency",
        "how many of the batch's conversations may run at once, 1 to BATCH_CONCURRENCY_MAX "
        "(default: BATCH_CONCURRENCY_DEFAULT)",
    )
    dry_run = FlagField(required=False, help_text="validate and summarise; create nothing")

    def to_internal_value(self, data):
        _refuse_unknown(data, self.fields)
        _refuse_repeated(data)
        return super().to_internal_value(data)

    def validate_file(self, upload):
        # A body over its limit is a 413 wherever it is sent, this one included:
        # a client retries a 400 with a fix, and nothing fixes the size but less.
        limit = settings.BATCH_MAX_UPLOAD_BYTES
        if upload.size is not None and upload.size > limit:
            raise PayloadTooLarge(
                f"The file is larger than the limit of {limit} bytes (BATCH_MAX_UPLOAD_BYTES)."
            )
        return upload

    def validate(self, attrs):
        """One value per field, whichever name it came under."""
        processor = _either(attrs, "processor", "aiProvider") or "echo"
        if processor not in processor_names():
            given = "aiProvider" if attrs.get("aiProvider") else "processor"
            raise serializers.ValidationError(
                f"Form field {given} names no registered processor ({processor!r}); "
                f"choose one of: {', '.join(processor_names())}."
            )
        return {
            "file": attrs["file"],
            "name": _either(attrs, "name", "batchName"),
            "processor": processor,
            "options": _options(attrs),
            "priority": attrs.get("priority") or "normal",
            "concurrency": attrs.get("concurrency") or None,
            "dry_run": attrs.get("dry_run", False),
        }


def _refuse_unknown(data, fields) -> None:
    unknown = [name for name in data if name not in fields]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise serializers.ValidationError(
            {
                api_settings.NON_FIELD_ERRORS_KEY: [
                    f"Unknown form field{plural} {', '.join(unknown)}; the accepted fields are: "
                    f"{', '.join(fields)}."
                ]
            }
        )


def _refuse_repeated(data) -> None:
    for name in data:
        given = len(data.getlist(name)) if hasattr(data, "getlist") else 1
        if given > 1:
            raise serializers.ValidationError(
                {name: [f"Form field {name} is given {given} times; give it once."]}
            )


def _either(attrs: dict, field: str, alias: str) -> str:
    """A field given under its own name or its alias (blank = not given); both with
    different values is a mistake."""
    ours, theirs = attrs.get(field) or "", attrs.get(alias) or ""
    if ours and theirs and ours != theirs:
        raise serializers.ValidationError(
            f"Form fields {field} and {alias} are the same field and differ "
            f"({ours!r} and {theirs!r}); give one of them."
        )
    return ours or theirs


def _options(attrs: dict) -> dict:
    """The options object with the option form fields added to it."""
    options = dict(attrs.get("options") or {})
    for field, key in OPTION_FIELDS.items():
        if field not in attrs:
            continue
        if key in options and options[key] != attrs[field]:
            raise serializers.ValidationError(
                f"Form field {field} and options.{key} differ ({attrs[field]!r} and "
                f"{options[key]!r}); give one of them."
            )
        options[key] = attrs[field]
    return options


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = [
            "id",
            "row_number",
            "chat_id",
            "input",
            "output",
            "status",
            "error",
            "attempts",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class InteractionDetailSerializer(InteractionSerializer):
    """An item on its own (batch GET): with its batch's id too."""

    class Meta(InteractionSerializer.Meta):
        fields = ["id", "batch_id", *InteractionSerializer.Meta.fields[1:]]  # [0] is "id"
        read_only_fields = fields


class RetryFailedSerializer(serializers.Serializer):
    """The optional body of retry-failed."""

    group = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="a failure group's key (failure_groups[].key); absent: every failed item",
        error_messages={
            "invalid": "group must be a failure group's key, as text.",
            "max_length": "group must be a failure group's key (at most 16 characters).",
        },
    )

    def to_internal_value(self, data):
        unknown = [name for name in data if name not in self.fields]
        if unknown:
            raise serializers.ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        f"Unknown field {', '.join(map(str, unknown))}; retry-failed takes "
                        "only group."
                    ]
                }
            )
        return super().to_internal_value(data)
