"""The settings batches reads: refused at start-up when they could never work."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from batches.checks import check_column_aliases
from batchsvc.settings import env_map


def test_the_default_aliases_pass_the_check():
    assert check_column_aliases(None) == []


@pytest.mark.parametrize(
    ("aliases", "says"),
    [
        ({"prompt": "answer"}, "names 'answer', which is not one of question, chat_id, url"),
        ({"chat-id": "url"}, "is already the name of 'chat_id'"),
        (["prompt"], "must map names to columns"),
    ],
)
def test_an_alias_that_could_never_be_read_is_a_system_check_error(settings, aliases, says):
    settings.BATCH_COLUMN_ALIASES = aliases
    [error] = check_column_aliases(None)
    assert error.id == "batches.E001"
    assert says in error.msg


def test_the_aliases_are_read_from_the_environment_as_name_column_pairs(monkeypatch):
    monkeypatch.setenv("SOME_MAP", " Prompt = question , Thread=chat_id")
    assert env_map("SOME_MAP", "") == {"Prompt": "question", "Thread": "chat_id"}
    monkeypatch.setenv("SOME_MAP", "Prompt")
    with pytest.raises(ImproperlyConfigured, match="SOME_MAP must be name=column pairs"):
        env_map("SOME_MAP", "")
