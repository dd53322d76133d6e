"""Per-run setup log lines (LogEntry): filled in by the setup-logs issue."""
