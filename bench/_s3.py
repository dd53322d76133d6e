"""moto's S3-compatible server in a process of its own, for benches: a bucket, and
the environment that points batchsvc's files storage at it.

moto's S3 application is served by gunicorn with kept-alive connections, as S3
keeps them: ``python -m moto.server`` (werkzeug's development server) closes every
connection, starts a thread for each and lists moto's package folder to find the
service of every request, which more than doubled a PUT's cost.
"""

import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

import boto3
import httpx

from bench._server import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
REGION = "us-east-1"


@contextmanager
def s3_server():
    """Yield ``(url, env_for(bucket), client)`` of a fresh moto server on 127.0.0.1."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
            *("--worker-class", "gthread", "--workers", "1", "--threads", "8"),
            *("--keep-alive", "60", "--log-level", "warning"),
            "moto.moto_server.werkzeug_app:create_backend_app('s3')",
        ],
        # Not the repository: gunicorn would read batchsvc's gunicorn.conf.py there.
        cwd=tempfile.gettempdir(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        yield url, client
    finally:
        proc.terminate()
        proc.wait(10)


def new_bucket(client) -> str:
    name = f"bench-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def storage_env(url: str, bucket: str, prefix: str = "files") -> dict[str, str]:
    """What a batchsvc process needs to keep its files in ``bucket`` on ``url``."""
    return {
        "FILES_STORAGE_URL": f"s3://{bucket}/{prefix}",
        "AWS_S3_ENDPOINT_URL": url,
        "AWS_S3_REGION_NAME": REGION,
        **CREDENTIALS,
    }


def object_count(client, bucket: str, prefix: str = "") -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)
