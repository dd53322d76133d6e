"""Chat processors: what answers one row of a batch, and the registry that finds them.

A processor is a class registered by name in settings.BATCH_PROCESSORS. It is built
once per batch with the batch's options and called once per item with the row's
values and the earlier exchanges of the same conversation. It returns a
JSON-serialisable dict with at least "text", or raises ProcessorError (the item
fails with that message; the batch goes on).
"""

from typing import ClassVar

from django.conf import settings
from django.utils.module_loading import import_string


class ProcessorError(Exception):
    """the item fails; str(exc) is stored as its error"""


# The upload form's option fields (lang, searchProvider, applyOverrides): every processor
# takes them, so that its uploads are accepted whatever the processor.
FORM_OPTIONS = {
    "lang": "the answers' language (the lang form field)",
    "search_provider": "a search provider's name (the searchProvider form field)",
    "apply_overrides": "true or false (the applyOverrides form field)",
}


class Processor:
    """Base class. Subclasses set ``name`` and ``accepts`` and implement ``process``;
    ``__init__`` validates the options and raises ValueError with a sentence when
    they are wrong or the processor is not configured."""

    name: ClassVar[str]
    # The options it takes, name -> what it is: refused uploads, the schema and the
    # README list them from here. Declaring one more is one line.
    accepts: ClassVar[dict[str, str]] = FORM_OPTIONS
    # Options it does not know are passed on (to a service that knows them) rather
    # than refused.
    passes_on: ClassVar[bool] = False
    # The setting holding the address it calls, named when every item fails alike.
    address_setting: ClassVar[str] = ""
    # Whether its answers say how many tokens they used (pages show tokens only then).
    reports_usage: ClassVar[bool] = False
    # Whether a spreadsheet upload may name it (one made for another surface may not).
    uploadable: ClassVar[bool] = True
    # Whether its rows share a conversation number without a chat_id: rows that ignore
    # their history, numbered in runs only so that one claim takes several.
    runs_of_rows: ClassVar[bool] = False

    def __init__(self, options: dict):
        if not isinstance(options, dict):
            raise ValueError("The processor options must be a JSON object.")
        if missing := self.configuration_error():
            raise ValueError(missing)
        unknown = [key for key in options if key not in self.accepts]
        if unknown and not self.passes_on:
            raise UnknownOptions(self, unknown)
        self.options = options

    @classmethod
    def configuration_error(cls) -> str | None:
        """Why the processor cannot be used with this server's settings (a sentence
        naming the setting), or None. Checked at upload and by the worker."""
        return None

    def process(self, input: dict, history: list[dict]) -> dict:
        raise NotImplementedError

    def bind(self, *, batch_id, owner_id=None) -> None:
        """The processor works for this batch (its calls spend the batch's own rate
        limits too, when its options set any)."""

    def close(self) -> None:
        """Release connections; the processor is not used afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class UnknownOptions(ValueError):
    """Options the processor does not take; ``details`` lists those it does."""

    def __init__(self, processor: Processor, unknown: list[str]):
        plural = "s" if len(unknown) > 1 else ""
        taken = "; ".join(f"{key}: {what}" for key, what in processor.accepts.items())
        super().__init__(
            f"The {processor.name} processor takes no option{plural} "
            f"{', '.join(map(repr, unknown))}; it takes: {taken}."
        )
        self.details = {"unknown_options": unknown, "accepted_options": dict(processor.accepts)}


def get_processor(name: str, options: dict) -> Processor:
    """Build the processor registered as ``name`` in settings.BATCH_PROCESSORS.
    ValueError (with a sentence for the user) for an unknown name or bad options."""
    processor = processor_class(name)
    if processor is None:
        raise ValueError(
            f"Unknown processor {name!r}; choose one of: {', '.join(processor_names())}."
        )
    return processor(options)


def processor_class(name: str) -> type[Processor] | None:
    path = settings.BATCH_PROCESSORS.get(name)
    return None if path is None else import_string(path)


def reports_usage(name: str) -> bool:
    processor = processor_class(name)
    return bool(processor and processor.reports_usage)


def processor_names() -> list[str]:
    """The processors a spreadsheet upload may name."""
    return [name for name in settings.BATCH_PROCESSORS if _registered(name).uploadable]


def _registered(name: str) -> type[Processor]:
    return import_string(settings.BATCH_PROCESSORS[name])


def options_help() -> str:
    """The options each registered processor takes, for the schema and the forms."""
    described = []
    for name in processor_names():
        processor = _registered(name)
        others = ", and any other (passed on)" if processor.passes_on else ""
        described.append(f"{name}: {', '.join(processor.accepts)}{others}")
    return "; ".join(described)


USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


def usage_of(output: dict | None) -> dict | None:
    """An answer's ``usage`` as three whole numbers of tokens, or None without one."""
    usage = (output or {}).get("usage") if isinstance(output, dict) else None
    if not isinstance(usage, dict):
        return None
    counts = {key: usage.get(key) for key in USAGE_FIELDS}
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()):
        return None
    return counts
