"""Batches of spreadsheet rows processed in the background: filled in by the batches issue."""
