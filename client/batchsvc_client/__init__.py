"""Python client for batchsvc. Needs httpx only: no Django import anywhere here.

from batchsvc.client import Client, LogBatcher

with Client("http://127.0.0.1:8000", token="...") as client:
    summary = client.upload_runs(runs)
    with LogBatcher(client, run_id) as logs:  # or BatchsvcLogHandler(client, run_id)
        logs.add("info", "cloning the repository")
"""

from batchsvc.client._http import ApiError, Client
from batchsvc.client.handler import BatchsvcLogHandler
from batchsvc.client.ids import new_event_id
from batchsvc.client.logs import LogBatcher
from batchsvc.client.traces import TraceWriter

__all__ = ["ApiError", "BatchsvcLogHandler", "Client", "LogBatcher", "TraceWriter", "new_event_id"]
