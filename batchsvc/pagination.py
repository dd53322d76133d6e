from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages over data that keeps growing: no COUNT(*), no skipped or
    repeated rows when new rows arrive between two pages."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 1000
