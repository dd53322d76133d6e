"""Small pieces every API view uses."""

from batchsvc.errors import ApiError

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def query_flag(request, name: str) -> bool:
    """A boolean query parameter; anything but true/false is a 400, not False."""
    value = request.query_params.get(name, "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(f"Query parameter {name} must be true or false, not {value!r}.")
