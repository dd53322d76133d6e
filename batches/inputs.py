"""What the API takes in for batches: the upload's multipart form (with the older
form's field names beside ours) and retry-failed's body. Input only: the shapes of
fields; the service checks the rest."""

import msgspec
from django.utils.functional import lazy
from django.utils.text import format_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from batches.models import NAME_MAX
from batches.processors.base import options_help, processor_names
from batchsvc.api.flags import parse_bool


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
