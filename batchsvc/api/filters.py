"""List filtering for every list endpoint: django-filter's backend, refusing a query
parameter the list does not take and answering a bad value in our error format.

A list names what it takes in one place, :func:`list_parameters`: its filters, its
paginator's ``cursor`` and ``page_size``, ``ordering`` when it can be ordered,
``fields`` when it selects fields, and DRF's ``format``. Anything else is a 400
listing them (``?bogus_filter=1`` is not "every row"; ``?stauts=failed`` is a typo,
not a filter). The backend is first in ``DEFAULT_FILTER_BACKENDS``; a view that
sets its own ``filter_backends`` puts it there too.
"""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
from rest_framework.settings import api_settings

from batchsvc.api.errors import ApiError, sentence


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        refuse_unknown(request, list_parameters(view, filterset))
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise filter_error(filterset.errors)
        return filterset.qs


def list_parameters(view, filterset=None) -> list[str]:
    """The query parameters a list view takes, in the order its refusals list them."""
    # A view's own, first: ?fields= (batchsvc.api.fields.FieldSelectionMixin).
    names = list(view.query_parameters()) if hasattr(view, "query_parameters") else []
    paginator = getattr(view, "paginator", None)
    for attribute in ("page_size_query_param", "cursor_query_param", "page_query_param"):
        if name := getattr(paginator, attribute, None):
            names.append(name)
    backends = getattr(view, "filter_backends", ())
    if any(issubclass(backend, filters.OrderingFilter) for backend in backends):
        names.append(api_settings.ORDERING_PARAM)
    if filterset is not None:
        names.extend(filter_parameters(filterset))
    names.append(api_settings.URL_FORMAT_OVERRIDE)
    return list(dict.fromkeys(names))


def filter_parameters(filterset) -> list[str]:
    """The query parameters of a FilterSet's filters: a range filter takes two
    (``start_time_after``, ``start_time_before``), the others their own name."""
    names = []
    for name, field in filterset.form.fields.items():
        suffixes = getattr(field.widget, "suffixes", None)
        names.extend([f"{name}_{s}" if s else name for s in suffixes] if suffixes else [name])
    return names


def refuse_unknown(request, accepted: list[str]) -> None:
    unknown = [name for name in request.query_params if name not in accepted]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise ApiError(
            f"Unknown query {noun} {listed}; this list takes: {', '.join(accepted)}.",
            details={"unknown": unknown, "valid": accepted},
        )


def filter_error(errors) -> ApiError:
    """A FilterSet's errors as a 400 naming the first bad parameter.

    Django formats each message with its own parameters, if it has any; a message
    holding the value sent (``level=x%``) is never used as a %-template, which
    django-filter's own translation does, failing with a TypeError (a 500).
    """
    details = {name: list(messages) for name, messages in errors.items()}
    name, messages = next(iter(details.items()))
    return ApiError(
        sentence(f"Query parameter {name} is not valid: {messages[0]}"), details=details
    )
