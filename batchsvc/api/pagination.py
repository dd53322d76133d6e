"""Cursor pages that end, and list parameters that refuse what they do not know."""

import json
from functools import reduce
from operator import or_

from django.db.models import Q
from rest_framework import filters, pagination

from batchsvc.api.errors import ApiError


class CursorPagination(pagination.CursorPagination):
    """Stable pages over data that keeps growing: no COUNT(*), no skipped or
    repeated rows when new rows arrive between two pages.

    Keyset pages on the whole ordering, which always ends in the primary key: DRF's
    own cursor keys on the first field only and stops moving past 1,000 rows that
    share a value (a thousand runs with one start_time paged forever). With a
    unique ordering the position alone says where a page starts; no offsets.
    """

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if {"pk", "-pk", "id", "-id"} & set(ordering):
            return ordering
        return (*ordering, "-pk" if ordering[0].startswith("-") else "pk")

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ApiError(
                f"Query parameter page_size must be a whole number from 1 to "
                f"{self.max_page_size}, not {raw!r}."
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        cursor, page_size = super().get_schema_operation_parameters(view)
        cursor["description"] = "A page of this list: the next or previous link's, as given."
        page_size["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return [cursor, page_size]

    def decode_cursor(self, request):
        raw = request.query_params.get(self.cursor_query_param)
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                position = json.loads(cursor.position)
                assert isinstance(position, list)
        except Exception:  # DRF's NotFound, or a position not of ours
            raise ApiError(
                f"Query parameter cursor is not a cursor of this list, {raw!r}: "
                "follow the next and previous links as given."
            ) from None
        return cursor

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        reverse = self.cursor is not None and self.cursor.reverse
        position = None if self.cursor is None else self.cursor.position

        order = pagination._reverse_ordering(self.ordering) if reverse else self.ordering
        queryset = queryset.order_by(*order)
        if position is not None:
            if len(json.loads(position)) != len(self.ordering):  # another ordering's cursor
                raise ApiError("Query parameter cursor belongs to another ordering of this list.")
            queryset = queryset.filter(self._beyond(json.loads(position), reverse))
        results = list(queryset[: self.page_size + 1])
        self.page = results[: self.page_size]
        more = len(results) > self.page_size
        if reverse:
            self.page.reverse()
        self.has_next, self.has_previous = (
            (position is not None, more)
            if reverse
            else (
                more,
                position is not None,
            )
        )
        self.display_page_controls = self.has_next or self.has_previous
        return self.page

    def _beyond(self, values: list, reverse: bool) -> Q:
        """Rows after ``values`` in the page's direction, field by field."""
        terms, same = [], Q()
        for field, value in zip(self.ordering, values, strict=True):
            name = field.lstrip("-")
            descending = field.startswith("-") != reverse
            terms.append(same & Q(**{f"{name}__{'lt' if descending else 'gt'}": value}))
            same &= Q(**{name: value})
        return reduce(or_, terms)

    def get_next_link(self):
        if not self.has_next:
            return None
        return self._link(self.page[-1], reverse=False)

    def get_previous_link(self):
        if not self.has_previous:
            return None
        return self._link(self.page[0], reverse=True)

    def _link(self, item, *, reverse: bool) -> str:
        position = self._get_position_from_instance(item, self.ordering)
        return self.encode_cursor(pagination.Cursor(offset=0, reverse=reverse, position=position))

    def _get_position_from_instance(self, instance, ordering):
        values = []
        for field in ordering:
            name = field.lstrip("-")
            value = getattr(instance, "pk" if name == "pk" else name)
            values.append(value.isoformat() if hasattr(value, "isoformat") else value)
        return json.dumps(values, default=str)


class OrderingFilter(filters.OrderingFilter):
    """DRF's ordering, refusing a field it does not offer instead of ignoring it."""

    def get_schema_operation_parameters(self, view):
        # The orderings offered, each way: a generated value is one the list takes.
        (parameter,) = super().get_schema_operation_parameters(view)
        if not isinstance(getattr(view, "ordering_fields", None), list | tuple):
            return [parameter]  # fields found from the queryset: documented as text
        fields = [name for name, _ in self.get_valid_fields(None, view, {})]
        parameter["schema"] = {
            "type": "string",
            "enum": [order for name in fields for order in (name, f"-{name}")],
        }
        return [parameter]

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        if len(valid) != len([field for field in fields if field]):
            allowed = sorted(
                name for name, _ in self.get_valid_fields(queryset, view, {"request": request})
            )
            refused = [field for field in fields if field and field not in valid]
            raise ApiError(
                f"Query parameter ordering cannot be {', '.join(refused)!s}; "
                f"it takes {', '.join(allowed)} (a leading - for descending).",
                details={"allowed": allowed},
            )
        return valid
