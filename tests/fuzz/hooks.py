"""schemathesis hooks for .ci/fuzz: what the schema cannot say.

An upload's file part is "a file" in the schema; a batch is made of a spreadsheet
with a question column. Half the generated uploads carry one, with only the form
fields the schema lets vary freely left as they were drawn, so that batches get
made and the stateful phase follows the links from them (the batch, its
interactions, results, cancel and retry-failed).
"""

import schemathesis
from hypothesis import strategies as st

QUESTIONS = b"question,chat_id\nHow are you?,a\nAnd then?,a\nSomething else,b\n"


@schemathesis.hook.apply_to(path="/api/v1/batches", method="POST")
def flatmap_body(ctx, body):
    if not isinstance(body, dict):
        return st.just(body)
    spreadsheet = {"file": QUESTIONS}
    for name in ("name", "batchName", "lang", "searchProvider", "dry_run"):
        if isinstance(body.get(name), str | bool):
            spreadsheet[name] = body[name]
    return st.sampled_from([body, spreadsheet])
