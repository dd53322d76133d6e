"""Column names as a spreadsheet's header gives them: ``question``, ``chat_id`` and
``url`` are found whatever their case and whatever spaces, underscores and hyphens
they carry (``Chat ID``, ``chatId``, ``chat-id``), and under the aliases configured
(settings.BATCH_COLUMN_ALIASES, e.g. ``REDACTEDQUESTION`` for question). Other columns
keep the name they were given. Pure code, no Django."""

import re
from collections.abc import Mapping
from dataclasses import dataclass

QUESTION, CHAT_ID, URL = "question", "chat_id", "url"
KNOWN_COLUMNS = (QUESTION, CHAT_ID, URL)


def column_key(name: str) -> str:
    """A column name as it is matched: lower case, without spaces, underscores or
    hyphens (``Chat ID``, ``chatId`` and ``chat-id`` are all ``chatid``)."""
    return re.sub(r"[\s_-]+", "", name.lower())


@dataclass(frozen=True)
class ColumnNames:
    """How header cells are read: ``known`` maps a matched name (see column_key) to
    a known column; ``aliases`` are the extra names as configured, for messages."""

    known: dict[str, str]
    aliases: dict[str, str]

    def column(self, name: str) -> str:
        return self.known.get(column_key(name), name)

    def question_aliases(self) -> list[str]:
        return [alias for alias, column in self.aliases.items() if column == QUESTION]


def column_names(aliases: Mapping[str, str] | None = None) -> ColumnNames:
    """The known columns and ``aliases`` (alias -> known column). ValueError for an
    alias of something that is not a known column, or one that would take another
    known column's name."""
    known = {column_key(name): name for name in KNOWN_COLUMNS}
    for alias, column in (aliases or {}).items():
        if column not in KNOWN_COLUMNS:
            raise ValueError(
                f"The column alias {alias!r} names {column!r}, which is not one of "
                f"{', '.join(KNOWN_COLUMNS)}."
            )
        key = column_key(alias)
        if known.get(key, column) != column:
            raise ValueError(f"The column alias {alias!r} is already the name of {known[key]!r}.")
        known[key] = column
    return ColumnNames(known=known, aliases=dict(aliases or {}))
