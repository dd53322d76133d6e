"""Python client for batchsvc, and the ``batchsvc`` command line (batchsvc_client.cli).
Needs httpx (and tqdm for progress bars): no Django import anywhere here.

from batchsvc_client import Client, LogBatcher

with Client("http://127.0.0.1:8000", token="...") as client:
    summary = client.upload_runs(runs)
    with LogBatcher(client, run_id) as logs:  # or BatchsvcLogHandler(client, run_id)
        logs.add("info", "cloning the repository")
"""

from batchsvc_client._http import ApiError
from batchsvc_client.client import Client, TransactionTooLarge
from batchsvc_client.handler import BatchsvcLogHandler
from batchsvc_client.ids import new_event_id
from batchsvc_client.logs import LogBatcher
from batchsvc_client.traces import TraceWriter

__all__ = [
    "ApiError",
    "BatchsvcLogHandler",
    "Client",
    "LogBatcher",
    "TraceWriter",
    "TransactionTooLarge",
    "new_event_id",
]
