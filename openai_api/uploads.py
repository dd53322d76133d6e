"""Uploads streamed to a temporary file and refused past OPENAI_BATCH_MAX_BYTES, never
held in memory. A file over the limit is read to its end and dropped, so that the
client gets its 400 rather than a connection reset half-way through sending."""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class TooLarge(Exception):
    """The upload passed the limit; ``size`` is how many bytes came."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class LimitedUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.size = 0

    def receive_data_chunk(self, raw_data, start):
        self.size = start + len(raw_data)
        if self.size > settings.OPENAI_BATCH_MAX_BYTES:
            return None  # dropped: nothing more is written
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        if file_size > settings.OPENAI_BATCH_MAX_BYTES:
            self.file.close()
            raise TooLarge(file_size)
        return super().file_complete(file_size)
