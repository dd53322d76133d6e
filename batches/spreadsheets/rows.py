"""The rows read from a spreadsheet: each as JSON in a spool, and the sheet that
holds them with the rows it skipped. Pure code, no Django."""

import io
import tempfile
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from batches.spreadsheets.columns import CHAT_ID

# How many skipped rows an answer lists; skipped_count says how many there were.
MAX_SKIPPED_LISTED = 100
FIRST_ROWS = 5  # rows a dry run shows, to check the columns were read as meant


class UploadError(ValueError):
    """str(exc) is one sentence for the user saying what is wrong."""


class TooLarge(UploadError):
    """The file is over the size limit: nothing but a smaller file cures it."""


@dataclass(slots=True)  # a 100,000-row upload holds 100,000 of them
class Row:
    """One data row. ``number`` is its row number in the file, the header being row 1
    (the number Excel shows; for CSV a quoted multi-line cell still counts as one row).
    ``values`` holds every column: question, chat_id and url as str ("" when blank),
    other blank cells as None, dates as ISO strings."""

    number: int
    values: dict[str, Any]


class RowSpool:
    """The rows of a sheet, kept as JSON in a temporary file (in memory up to
    ``SPOOL_IN_MEMORY`` bytes) rather than as objects: what an upload holds is a
    few bytes a row on the heap, whatever the number of rows. Reads like a list of
    :class:`Row`: ``len``, iteration, an index or a slice decode what they return;
    :meth:`texts` gives the rows as their JSON text, which is inserted as it is."""

    def __init__(self):
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self._numbers = array("Q")  # each row's number in the file
        self._splits = array("Q")  # where each row's chat_id (a JSON string) ends
        self._ends = array("Q")  # where each row's values (a JSON object) end

    def append(self, row: Row) -> None:
        self._file.seek(0, io.SEEK_END)
        self._file.write(_spool_json.encode(row.values.get(CHAT_ID) or ""))
        self._splits.append(self._file.tell())
        self._file.write(_spool_json.encode(row.values))
        self._ends.append(self._file.tell())
        self._numbers.append(row.number)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, at):
        if isinstance(at, slice):
            return [self._read(i) for i in range(*at.indices(len(self)))]
        return self._read(range(len(self))[at])

    def __iter__(self):
        for start in range(0, len(self), SPOOL_READ):
            yield from self[start : start + SPOOL_READ]

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    def texts(self, start: int, stop: int) -> list[tuple[int, str, str]]:
        """Rows ``start`` to ``stop`` as (number, chat_id, values as JSON text)."""
        return [self._text(i) for i in range(*slice(start, stop).indices(len(self)))]

    def _text(self, i: int) -> tuple[int, str, str]:
        start, split, end = self._ends[i - 1] if i else 0, self._splits[i], self._ends[i]
        self._file.seek(start)
        data = self._file.read(end - start)
        chat_id = _spool_str.decode(data[: split - start])
        return self._numbers[i], chat_id, data[split - start :].decode()

    def _read(self, i: int) -> Row:
        number, _, values = self._text(i)
        return Row(number=number, values=_spool_values.decode(values))


SPOOL_IN_MEMORY = 1024 * 1024
SPOOL_READ = 1000
_spool_json = msgspec.json.Encoder()
_spool_str = msgspec.json.Decoder(str)
_spool_values = msgspec.json.Decoder(dict[str, Any])


@dataclass
class Sheet:
    columns: list[str]
    rows: RowSpool = field(default_factory=RowSpool)
    skipped_count: int = 0
    """Rows with values but no question; the first MAX_SKIPPED_LISTED are in skipped_rows."""
    skipped_rows: list[dict] = field(default_factory=list)

    def skip(self, number: int, error: str) -> None:
        self.skipped_count += 1
        if len(self.skipped_rows) < MAX_SKIPPED_LISTED:
            self.skipped_rows.append({"row": number, "error": error})

    def summary(self) -> dict:
        """What a dry run reports: items, skipped rows, columns and conversations
        (blank chat_id = a conversation of its own)."""
        groups = Counter(row.values.get(CHAT_ID) or f"row {row.number}" for row in self.rows)
        return {
            "total_items": len(self.rows),
            "skipped_count": self.skipped_count,
            "skipped_rows": list(self.skipped_rows),
            "columns": list(self.columns),
            "chat_groups": len(groups),
            "largest_chat_group": max(groups.values(), default=0),
            "first_rows": [{"row": row.number, **row.values} for row in self.rows[:FIRST_ROWS]],
        }
