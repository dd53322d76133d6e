"""The zip guard: an XLSX file is a zip archive, and a small one can inflate to
gigabytes of XML. Before openpyxl sees it, the archive's central directory is checked
with zipfile, which reads no member data:

* at most ``MAX_ZIP_MEMBERS`` members;
* a total declared uncompressed size of at most ``max_uncompressed`` and at most
  ``MAX_INFLATION`` times the upload limit (a ratio limit alone does not bound the
  time openpyxl takes);
* the shared strings part at most ``max_shared_strings``: openpyxl loads it whole
  into memory before reading any row;
* no member larger than ``RATIO_EXEMPT_BYTES`` deflating more than ``MAX_RATIO``
  times, and no XML member larger than ``LARGE_XML_BYTES`` more than ``MAX_XML_RATIO``
  times (real workbooks stay well under both; bombs do not).

The declared sizes can be trusted because zipfile never inflates a member past its
declared size (it stops there and fails the CRC check), and openpyxl reads through it.
The sizes these limits were chosen from are in docs/benchmarks.md. Pure code, no Django.
"""

import zipfile
from xml.etree import ElementTree

from batches.spreadsheets.rows import UploadError

MiB = 1024 * 1024
MAX_ZIP_MEMBERS = 10_000
MAX_INFLATION = 20
MAX_UNCOMPRESSED = 256 * MiB
MAX_SHARED_STRINGS = 64 * MiB
MAX_RATIO = 50
RATIO_EXEMPT_BYTES = 1 * MiB
MAX_XML_RATIO = 32
LARGE_XML_BYTES = 32 * MiB
# [Content_Types].xml lists a workbook's parts: a few KiB even for many sheets.
MAX_CONTENT_TYPES = 1 * MiB
CONTENT_TYPES = "[Content_Types].xml"
SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)
ZIP_MAGIC = b"PK\x03\x04"


def check_zip(
    file,
    *,
    max_bytes: int,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_shared_strings: int = MAX_SHARED_STRINGS,
) -> None:
    """Refuse an XLSX that is not a zip, or whose members would inflate too far
    (see the module docstring for the limits). Reads the central directory and
    [Content_Types].xml, no other member."""
    file.seek(0)
    if file.read(4) != ZIP_MAGIC:
        raise UploadError("The file is not a valid XLSX workbook (it is not a zip archive).")
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise UploadError("The XLSX file has too many parts to be a workbook.")
            _check_sizes(members, limit=min(max_uncompressed, MAX_INFLATION * max_bytes))
            _check_shared_strings(archive, limit=max_shared_strings)
    except UploadError:  # a ValueError too
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, ElementTree.ParseError):
        raise UploadError("The XLSX file is corrupt (its zip archive cannot be read).") from None


def _check_sizes(members: list[zipfile.ZipInfo], *, limit: int) -> None:
    total = sum(member.file_size for member in members)
    if total > limit:
        raise UploadError(
            f"The XLSX file would inflate to {total / MiB:,.0f} MiB, more than the "
            f"{limit / MiB:,.0f} MiB a workbook may hold; it is refused as a likely zip bomb."
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        large_xml = member.filename.lower().endswith(".xml") and (
            member.file_size > LARGE_XML_BYTES
        )
        if (member.file_size > RATIO_EXEMPT_BYTES and ratio > MAX_RATIO) or (
            large_xml and ratio > MAX_XML_RATIO
        ):
            raise UploadError(
                f"The XLSX file would inflate to {total / MiB:,.0f} MiB: its part "
                f"{member.filename} deflates {ratio:,.0f}-fold, far more than a workbook's "
                "data does; it is refused as a likely zip bomb."
            )


def _check_shared_strings(archive: zipfile.ZipFile, *, limit: int) -> None:
    """openpyxl reads the whole shared strings part into memory before any row; it
    is the part [Content_Types].xml names, whatever its file name."""
    try:
        types = archive.getinfo(CONTENT_TYPES)
    except KeyError:
        return  # not a workbook; openpyxl says so
    if types.file_size > MAX_CONTENT_TYPES:
        raise UploadError("The XLSX file's list of parts is too large to be a workbook's.")
    root = ElementTree.fromstring(archive.read(types))
    for override in root.iter():
        if override.get("ContentType") != SHARED_STRINGS_TYPE:
            continue
        name = (override.get("PartName") or "").lstrip("/")
        size = next((m.file_size for m in archive.infolist() if m.filename == name), 0)
        if size > limit:
            raise UploadError(
                f"The XLSX file's shared strings would inflate to {size / MiB:,.0f} MiB, "
                f"more than the {limit / MiB:,.0f} MiB a workbook may hold; it is refused "
                "as a likely zip bomb."
            )
