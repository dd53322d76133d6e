"""A batch's output and error files, in OpenAI's line format::

    {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}

The lines are the batch's finished interactions in line order, read from the database
a chunk at a time: the output file holds the lines the provider answered with a
success; the error file those it answered with an error (``response`` filled), those
never sent (``error`` filled: ``batch_expired``, ``batch_cancelled``...), so that a
killed or cancelled batch shows exactly what has finished. Once the batch has ended
for good, a file is written once to the storage and served from there.
"""

import tempfile
from collections.abc import Iterator

import msgspec
from django.core.files import File as DjangoFile
from django.db import connection, transaction

from batches.models import Interaction, InteractionStatus
from openai_api.files import result_name, storage, stored_chunks
from openai_api.models import File, Lines
from openai_api.selectors import batch_state

CHUNK_LINES = 1000
SPOOL_BYTES = 8 * 1024 * 1024
STATUSES = {
    Lines.OUTPUT: (InteractionStatus.SUCCEEDED,),
    Lines.ERROR: (InteractionStatus.FAILED, InteractionStatus.CANCELLED),
}
CANCELLED = "The batch was cancelled before this request was sent."
ROWS = (
    "SELECT id, row_number, input, output, error, status FROM {table} WHERE batch_id = %s "
    "AND status IN ({statuses}) AND row_number > %s ORDER BY row_number LIMIT {limit}"
)


class _Request(msgspec.Struct):
    custom_id: str


class Response(msgspec.Struct):
    status_code: int
    request_id: str | None = None
    body: msgspec.Raw = msgspec.Raw(b"null")


class Error(msgspec.Struct):
    code: str
    message: str = ""


class Line(msgspec.Struct):
    id: str
    custom_id: str
    response: Response | None
    error: Error | None


_encode = msgspec.json.Encoder().encode
_requests = msgspec.json.Decoder(_Request)
_responses = msgspec.json.Decoder(Response)
_errors = msgspec.json.Decoder(Error)


def result_chunks(batch_id, which: str) -> Iterator[bytes]:
    """The file's lines as they are now, a chunk of CHUNK_LINES lines at a time."""
    statuses = ", ".join(f"'{status}'" for status in STATUSES[which])
    query = ROWS.format(
        table=connection.ops.quote_name(Interaction._meta.db_table),
        statuses=statuses,
        limit=CHUNK_LINES,
    )
    key = Interaction._meta.get_field("batch").get_db_prep_value(batch_id, connection)
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(query, [key, after])
            rows = cursor.fetchall()
        if not rows:
            return
        yield b"".join([_encode(line(*row)) + b"\n" for row in rows])
        if len(rows) < CHUNK_LINES:
            return
        after = rows[-1][1]


def line(pk, row_number, input, output, error, status) -> Line:
    try:
        custom_id = _requests.decode(input).custom_id
    except msgspec.DecodeError:
        custom_id = ""
    identifier = f"batch_req_{pk}"
    if status == InteractionStatus.CANCELLED:
        return Line(identifier, custom_id, None, Error("batch_cancelled", CANCELLED))
    try:
        if status == InteractionStatus.SUCCEEDED:
            return Line(identifier, custom_id, _responses.decode(output), None)
        if error.startswith('{"status_code"'):
            return Line(identifier, custom_id, _responses.decode(error), None)
        if error.startswith('{"code"'):
            return Line(identifier, custom_id, None, _errors.decode(error))
    except msgspec.DecodeError:
        pass
    # Failed in the engine rather than at the provider (a worker lost after a cancel,
    # an answer that could not be stored): the sentence it left.
    return Line(identifier, custom_id, None, Error("server_error", error or "The request failed."))


def file_content(file: File) -> Iterator[bytes]:
    """The file's bytes: an input file's as stored; a result file's from the stored
    copy once its batch has ended for good (written now if not yet), else as they
    stand in the database."""
    if file.batch_id is None:
        return stored_chunks(file.storage_name)
    if written(file):
        return stored_chunks(file.storage_name)
    return result_chunks(file.batch_id, file.lines)


def file_size(file: File) -> int:
    if file.batch_id is None or written(file):
        return file.bytes
    return sum(len(chunk) for chunk in result_chunks(file.batch_id, file.lines))


def written(file: File) -> bool:
    """Whether a result file's bytes are in the storage for its batch's end, writing
    them if the batch has ended and they are not; False while the batch runs."""
    settled = batch_state(file.batch).settled
    if settled is None:
        return False
    if file.storage_name and file.written_for == settled:
        return True
    write(file, settled)
    return True


def write(file: File, settled: str) -> None:
    """Write the lines to the storage under a fresh name, then point the row at them
    unless another request did first (its copy is as good: ours is deleted)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        size = 0
        for chunk in result_chunks(file.batch_id, file.lines):
            spool.write(chunk)
            size += len(chunk)
        spool.seek(0)
        name = storage().save(result_name(file.pk), DjangoFile(spool, name=file.filename))
    before = file.storage_name
    with transaction.atomic():
        won = File.objects.filter(
            pk=file.pk, storage_name=before, written_for=file.written_for
        ).update(storage_name=name, bytes=size, written_for=settled)
        if won and before:
            transaction.on_commit(lambda: storage().delete(before))
    if not won:
        storage().delete(name)
        file.refresh_from_db()
        return
    file.storage_name, file.bytes, file.written_for = name, size, settled
