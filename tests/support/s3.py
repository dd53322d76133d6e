"""An S3-compatible server for tests and benches: moto in server mode on a spare
port of 127.0.0.1, started once per test session by the ``s3_server`` fixture.

Like a bucket policy that denies writes under a prefix, the server refuses any
write of a key with a ``denied`` directory in it (403 AccessDenied): the way a
test shows what the service does with a file the storage refuses.
"""

import uuid

import pytest

from tests.support.servers import free_port

DENIED_PART = "/denied/"
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


def _deny_writes_under_denied(app):
    def middleware(environ, start_response):
        if environ["REQUEST_METHOD"] == "PUT" and DENIED_PART in environ.get("PATH_INFO", ""):
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [ACCESS_DENIED]
        return app(environ, start_response)

    return middleware


class S3Server:
    """moto's S3 (and every other moto service) on ``url``, in a thread."""

    def __init__(self):
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                app = _deny_writes_under_denied(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = Server(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> "S3Server":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["access_key"],
            aws_secret_access_key=CREDENTIALS["secret_key"],
            region_name=CREDENTIALS["region_name"],
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_options(self, bucket: str, prefix: str = "") -> dict:
        """OPTIONS of an S3FilesStorage on this server."""
        return {
            "bucket_name": bucket,
            "location": prefix,
            "endpoint_url": self.url,
            "querystring_auth": False,
            **CREDENTIALS,
        }

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server for the whole session, on a spare local port."""
    server = S3Server().start()
    yield server
    server.stop()
