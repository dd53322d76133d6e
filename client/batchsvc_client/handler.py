"""A ``logging.Handler`` that sends records to a run through a LogBatcher."""

import logging

from batchsvc_client.client import Client
from batchsvc_client.logs import LogBatcher

_LEVEL_OF = ((logging.CRITICAL, "critical"), (logging.ERROR, "error"), (logging.WARNING, "warning"))
_IGNORED_LOGGERS = ("batchsvc_client", "httpx", "httpcore")


def _ignored(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in _IGNORED_LOGGERS)


def level_name(levelno: int) -> str:
    """Our level for a ``logging`` level number (custom levels round down)."""
    for threshold, name in _LEVEL_OF:
        if levelno >= threshold:
            return name
    return "info" if levelno >= logging.INFO else "debug"


class BatchsvcLogHandler(logging.Handler):
    """A ``logging.Handler`` that sends records to a run through a :class:`LogBatcher`.

        handler = BatchsvcLogHandler(client, run_id, flush_interval=1.0)
        logging.getLogger("agent").addHandler(handler)
        ...
        handler.close()  # sends what is left

    The message is the handler's formatter's output (by default the message and
    any traceback); the timestamp is the record's. Records from the client's own
    HTTP machinery are ignored, so that sending logs does not log more lines.
    """

    def __init__(self, client: Client, run_id: str, level=logging.NOTSET, **batcher_options):
        super().__init__(level)
        self.batcher = LogBatcher(client, run_id, **batcher_options)

    def emit(self, record: logging.LogRecord) -> None:
        if _ignored(record.name):
            return
        try:
            self.batcher.add(
                level_name(record.levelno), self.format(record), timestamp=record.created
            )
        except RuntimeError:
            pass  # closed: records logged after close() have nowhere to go
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.batcher.flush()

    def close(self) -> None:
        try:
            self.batcher.close()
        finally:
            super().close()
