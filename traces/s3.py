"""The files storage on S3 (or an S3-compatible server): django-storages' S3 backend
with the promises the local :class:`~traces.storage.TraceStorage` keeps.

- Confinement: every name is checked by the same rules as a trace path (no ``..``,
  no absolute path, no control characters) and lands under the storage's prefix.
- Per-file atomicity: an object appears whole or not at all (a PUT, or a multipart
  upload, is visible only once complete), so a reader never sees half a file.
- Writers of one path take turns: a trace file is held by its request until the
  trace service has locked its path, then put in place with one PUT, so the object
  and its row change in the same order when two requests write one path (see
  :mod:`traces.files`). One request a file: a staging upload and a copy were two.
- sha256: each object carries its SHA-256 as an S3 checksum, which the server
  verifies on upload, and as ``sha256`` metadata, which :meth:`S3FilesStorage.sha256`
  reads back.
"""

import base64
import errno
import hashlib
import threading
from collections.abc import Iterable

from botocore.config import Config
from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from traces.storage import checked_name

DIRECT_PUT_MAX = 8 * 1024 * 1024
"""Up to this size an upload is one PUT; larger ones go through boto3's multipart
transfer (atomic too: the object appears when the upload completes)."""
POOL_CONNECTIONS = 32
"""HTTP connections the shared client keeps: a batch's threads and the web threads."""


class S3FilesStorage(S3Storage):
    """S3Storage that refuses unsafe names, records each file's SHA-256 and
    holds trace files for a publish under lock."""

    def __init__(self, **settings):
        # A path written again is replaced in place, as on the local storage.
        settings.setdefault("file_overwrite", True)
        super().__init__(**settings)
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def client(self):
        """One client for every thread (boto3 clients are thread-safe). The
        backend's own ``connection`` is a resource per thread, and the helper
        threads of a batch are new ones on every request: building a session
        and a resource for each costs more than the upload."""
        with self._client_lock:
            if self._client is None:
                config = (self.client_config or Config()).merge(
                    Config(max_pool_connections=POOL_CONNECTIONS)
                )
                self._client = self._create_session().client(
                    "s3",
                    region_name=self.region_name,
                    use_ssl=self.use_ssl,
                    endpoint_url=self.endpoint_url,
                    config=config,
                    verify=self.verify,
                )
            return self._client

    def _normalize_name(self, name):
        return super()._normalize_name(checked_name(clean_name(name)))

    def _save(self, name, content):
        key = self._normalize_name(name)
        content.seek(0)
        if content.size <= DIRECT_PUT_MAX:
            self._put(key, b"".join(content.chunks()))
            return clean_name(name)
        # Read twice rather than held: the digest first, then the multipart upload,
        # for which S3 computes and checks a SHA-256 per part.
        digest = hashlib.sha256()
        for chunk in content.chunks():
            digest.update(chunk)
        content.seek(0)
        parameters = {
            **self._get_write_parameters(key, content),
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {"sha256": digest.hexdigest()},
        }
        self.client.upload_fileobj(
            content, self.bucket_name, key, ExtraArgs=parameters, Config=self.transfer_config
        )
        return clean_name(name)

    def _put(self, key: str, data: bytes) -> None:
        digest = hashlib.sha256(data).digest()
        self.client.put_object(
            Bucket=self.bucket_name,
            Key=key,
            Body=data,
            ChecksumSHA256=base64.b64encode(digest).decode(),
            Metadata={"sha256": digest.hex()},
            **self._get_write_parameters(key),
        )

    def sha256(self, name: str) -> str | None:
        """The SHA-256 recorded with the object (hex), None when it has none."""
        try:
            head = self.client.head_object(Bucket=self.bucket_name, Key=self._normalize_name(name))
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
        return head.get("Metadata", {}).get("sha256")

    def stage(self, name: str, chunks: Iterable[bytes]) -> "PendingObject":
        """A file to be put at ``name`` by :meth:`PendingObject.publish`; nothing is
        sent before."""
        return PendingObject(self, self._normalize_name(name), b"".join(chunks))


class PendingObject:
    """A trace file's bytes on their way to its key. :meth:`publish` puts them in
    place, whole (an object appears once its PUT completes)."""

    def __init__(self, storage: S3FilesStorage, target: str, data: bytes):
        self.storage, self.target, self.data = storage, target, data
        self.size = len(data)

    def sync(self) -> None:
        """Nothing to flush: the bytes are stored once the PUT returned."""

    def publish(self) -> None:
        try:
            self.storage._put(self.target, self.data)
        except ClientError as err:
            raise OSError(errno.EACCES, f"the bucket answered {_code(err)}") from err


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code") or "error"
