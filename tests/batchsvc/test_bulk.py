"""The bulk engine's own rules, apart from any endpoint."""

import json
import re
from typing import Annotated

import msgspec
import pytest

from batchsvc.api import parsers
from batchsvc.api.bulk import validate_items
from batchsvc.api.schemas import NUL_AND_SLASH_FREE, NUL_FREE, refuse_characters, refusing

SAMPLES = ["", "plain", "a/b", "a\x00b", "\x00", "/", "ünïcode/\x00", "line\nbreak"]


@pytest.mark.parametrize("meta", [NUL_FREE, NUL_AND_SLASH_FREE])
def test_the_documented_pattern_accepts_exactly_what_the_check_accepts(meta):
    pattern = meta.extra_json_schema["pattern"]

    class Item(msgspec.Struct):
        text: Annotated[str, meta]

        def __post_init__(self):
            refuse_characters(self)

    for sample in SAMPLES:
        documented = re.search(pattern, sample) is not None
        try:
            msgspec.convert({"text": sample}, Item)
        except msgspec.ValidationError:
            checked = False
        else:
            checked = True
        assert documented == checked, sample


def test_refuse_characters_names_the_first_field_that_breaks_its_rule():
    class Item(msgspec.Struct):
        a: Annotated[str, NUL_FREE] | None = None
        b: Annotated[str, refusing(r"^[^;]*$", ";", "must not contain ;")] | None = None
        c: str | None = None  # no rule

    refuse_characters(Item(a="x", b="y", c="\x00;"))
    with pytest.raises(ValueError, match=r"^b: must not contain ;$"):
        refuse_characters(Item(a="x", b="y;"))
    with pytest.raises(ValueError, match=r"^a: must not contain the NUL character$"):
        refuse_characters(Item(a="\x00", b=";"))


class Named(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, NUL_AND_SLASH_FREE]
    note: Annotated[str, NUL_FREE] = ""

    def __post_init__(self):
        refuse_characters(self)


@pytest.mark.parametrize(
    ("items", "errors"),
    [
        # No NUL in any item's text: the NUL check is skipped, the "/" check is not.
        ([b'{"name": "a"}', b'{"name": "a/b"}'], {1: "name: must not contain / or the NUL"}),
        # A NUL escaped in one item: every item is checked for it.
        ([b'{"name": "a", "note": "x\\u0000"}', b'{"name": "b"}'], {0: "note: must not"}),
        ([b'{"name": "a\\u0000"}', b'{"name": "b/"}'], {0: "name: must", 1: "name: must"}),
        # An escaped backslash before "u0000" is no NUL, and is kept.
        ([b'{"name": "a", "note": "\\\\u0000"}'], {}),
    ],
)
def test_items_are_checked_for_nul_only_when_their_text_can_hold_one(items, errors):
    valid, invalid = validate_items([msgspec.Raw(item) for item in items], Named)

    assert {error.index: error.error[: len(errors[error.index])] for error in invalid} == errors
    assert len(valid) == len(items) - len(errors)


def test_a_bulk_body_is_decoded_once_and_each_valid_item_once_even_beside_a_bad_one(
    api, run_factory, monkeypatch
):
    good, bad, other = (json.dumps(run_factory(status=s)) for s in ("running", "?", "success"))
    body = f'{{"runs": [{good}, {bad}, {other}]}}'.encode()
    decoded = []

    def decode(data, **kwargs):
        decoded.append(bytes(data))
        return real_decode(data, **kwargs)

    class Decoder:
        def decode(self, data):
            decoded.append(bytes(data))
            return real_decoder.decode(data)

    real_decode, real_decoder = msgspec.json.decode, parsers._decoder
    monkeypatch.setattr(msgspec.json, "decode", decode)
    monkeypatch.setattr(parsers, "_decoder", Decoder())
    response = api.post("/api/v1/runs/batch", body, content_type="application/json")

    assert [item["result"] for item in response.json()["runs"]] == ["created", "failed", "created"]
    assert decoded.count(body) == 1
    assert decoded.count(good.encode()) == 1
    assert decoded.count(other.encode()) == 1
