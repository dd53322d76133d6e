from django.conf import settings
from django.core.checks import Error, register

from batches.spreadsheets.columns import column_names


@register()
def check_column_aliases(app_configs, **kwargs):
    """Refuse to start with an alias that could never be read, rather than fail
    every upload."""
    aliases = settings.BATCH_COLUMN_ALIASES
    if not isinstance(aliases, dict):
        return [Error("BATCH_COLUMN_ALIASES must map names to columns.", id="batches.E001")]
    try:
        column_names(aliases)
    except ValueError as exc:
        return [Error(f"BATCH_COLUMN_ALIASES: {exc}", id="batches.E001")]
    return []
