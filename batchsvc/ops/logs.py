"""Structured log lines: readable text by default, JSON lines with LOG_FORMAT=json.

Every stdlib logger (ours, Django's, DRF's) goes through one structlog
ProcessorFormatter, which adds what is bound in the current context: the request id
and, by the end of a request, its route and item counts; in a worker, the batch. The
context is a contextvar, so each thread (gthread's request threads, a worker's
batch threads) carries its own.
"""

import logging
import sys

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

__all__ = ["bind", "clear", "current_request_id", "formatter"]

bind = bind_contextvars
clear = clear_contextvars


def current_request_id() -> str | None:
    return get_contextvars().get("request_id")


def formatter(*, json: bool = False) -> logging.Formatter:
    """The formatter named in settings.LOGGING (and by gunicorn.conf.py)."""
    pre_chain = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        # Which of the web or worker processes wrote it, as gunicorn's own lines say.
        structlog.processors.CallsiteParameterAdder(
            [structlog.processors.CallsiteParameter.PROCESS]
        ),
    ]
    if json:
        # A traceback as text: structured tracebacks carry each frame's local
        # variables, which can hold tokens and passwords.
        renderer = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
