"""The ``batchsvc`` command line (``batchsvc --help``)."""

from batchsvc_client.cli.app import main

__all__ = ["main"]
