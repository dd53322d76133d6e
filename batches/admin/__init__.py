"""The batches admin: batches with their live figures, items, and owners' quotas."""

from batches.admin import batches, items, quotas  # noqa: F401  (registers the admins)
