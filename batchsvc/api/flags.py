"""The one rule for booleans written as text: query strings, form fields, settings.

A plain module (no Django) so that settings can use it too.
"""

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})
ALLOWED = "true or false (also 1/0, yes/no, on/off)"


def parse_bool(value: str | None, *, default: bool) -> bool:
    """``value`` as a boolean, ``default`` when absent or empty; ValueError for
    anything else, so that a typo is a refusal rather than a silent False."""
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"must be {ALLOWED}, not {value!r}")
