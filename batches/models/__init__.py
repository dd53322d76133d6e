"""The batches app's models, a module per kind: batches and their items, their
owners' retries and quotas, and the workers' own rows."""

from batches.models.batch import (
    ACTIVE_BATCH,
    CANCELLED_BATCH,
    FAILED_SQL,
    NAME_MAX,
    PENDING_SQL,
    PRIORITY_RANK,
    RAN_TO_THE_END,
    RETRYABLE_BATCH,
    RUNNING_SQL,
    UNENDED_BATCH,
    UNFINISHED,
    Batch,
    BatchPriority,
    BatchStatus,
    Interaction,
    InteractionStatus,
    concurrency_cap,
    worker_threads,
)
from batches.models.owners import BatchAttempt, OwnerQuota, Quota
from batches.models.workers import Lane, Worker

__all__ = [
    "ACTIVE_BATCH",
    "CANCELLED_BATCH",
    "FAILED_SQL",
    "NAME_MAX",
    "PENDING_SQL",
    "PRIORITY_RANK",
    "RAN_TO_THE_END",
    "RETRYABLE_BATCH",
    "RUNNING_SQL",
    "UNENDED_BATCH",
    "UNFINISHED",
    "Batch",
    "BatchAttempt",
    "BatchPriority",
    "BatchStatus",
    "Interaction",
    "InteractionStatus",
    "Lane",
    "OwnerQuota",
    "Quota",
    "Worker",
    "concurrency_cap",
    "worker_threads",
]
