"""The files storage as production configures it (``FILES_STORAGE_URL``), once on a
local folder and once on the session's S3-compatible server: tests that take the
``files_storage`` fixture run on both, and look at what was stored through the
helper it returns."""

import hashlib
from pathlib import Path

import pytest

from batchsvc.settings import files_storage as configured_storage
from tests.support.s3 import CREDENTIALS, S3Server


class LocalFiles:
    kind = "local"

    def __init__(self, root: Path):
        self.root = root

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def names(self) -> list[str]:
        """Every file stored, temporary ones included."""
        if not self.root.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def sha256(self, name: str) -> str:
        return hashlib.sha256(self.read(name)).hexdigest()

    def refuse(self, name: str) -> None:
        """Make the storage refuse a write of ``name``: a directory stands in its place."""
        (self.root / name).mkdir(parents=True)


class S3Files:
    kind = "s3"

    def __init__(self, server: S3Server, bucket: str, prefix: str):
        self.server, self.bucket, self.prefix = server, bucket, prefix

    def read(self, name: str) -> bytes:
        answer = self.server.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")
        return answer["Body"].read()

    def names(self) -> list[str]:
        keys = self.server.keys(self.bucket, f"{self.prefix}/")
        return [key.removeprefix(f"{self.prefix}/") for key in keys]

    def sha256(self, name: str) -> str:
        """The digest recorded with the object, which S3 checked on upload."""
        head = self.server.client().head_object(
            Bucket=self.bucket, Key=f"{self.prefix}/{name}", ChecksumMode="ENABLED"
        )
        return head["Metadata"]["sha256"]

    def refuse(self, name: str) -> None:
        assert "/denied/" in f"/{name}", "the server refuses writes under a denied directory"


@pytest.fixture(params=["local", "s3"])
def files_storage(request, settings, monkeypatch, tmp_path):
    """The ``traces`` storage from FILES_STORAGE_URL: empty (a local folder), then
    ``s3://<fresh bucket>/files`` on the session's moto server."""
    if request.param == "local":
        settings.TRACES_ROOT = root = tmp_path / "files"
        monkeypatch.setattr("batchsvc.settings.TRACES_ROOT", root)
        helper, url = LocalFiles(root), ""
    else:
        server = request.getfixturevalue("s3_server")
        monkeypatch.setenv("AWS_S3_ENDPOINT_URL", server.url)
        monkeypatch.setenv("AWS_S3_REGION_NAME", CREDENTIALS["region_name"])
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["access_key"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["secret_key"])
        bucket = server.create_bucket()
        helper, url = S3Files(server, bucket, "files"), f"s3://{bucket}/files"
    settings.STORAGES = {**settings.STORAGES, "traces": configured_storage(url)}
    return helper
