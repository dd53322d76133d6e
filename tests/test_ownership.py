"""Nobody reaches another owner's data, by any route, through any identifier.

Alice owns a run (with log lines and a trace file) and a batch. Bob, an ordinary
user with a token, tries every API route against them. Each route answers him
exactly as it answers for an object that does not exist, and nothing of alice's
changes. ``ROUTES`` is the table of cases; ``test_every_api_route_is_in_the_table``
walks the URL patterns, so that a new route fails until it has its case here.
"""

import uuid

import pytest
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batches.models import Batch, Interaction
from setuplogs.models import LogEntry
from tests.batches.factories import csv_upload, make_batch
from traces.models import Run, TraceFile
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

RUN_ID = "nightly-001"
EVENT_ID = "0b7b6f3e-3f5e-4a53-9d2c-6d1c1f0a9b11"
CLIENT_ID = "line-1"
TRACE = {"trace_data": '{"secret": 1}', "file_name": "trace.json", "output_directory": "nightly"}
MISSING_RUN, MISSING_PK, MISSING_UUID = "no-such-run", 987654, str(uuid.uuid4())


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def hidden(alice, api, alice_root, run_factory):
    """Alice's objects, stored through the API as she would."""
    run = run_factory(event_id=EVENT_ID, run_id=RUN_ID)
    assert api.post("/api/v1/runs/", run, format="json").status_code == 201
    line = {"level": "info", "message": "alice's secret line", "client_id": CLIENT_ID}
    assert api.post(f"/api/v1/runs/{RUN_ID}/setup_log", line, format="json").status_code == 201
    trace = api.post("/api/v1/traces/write", {**TRACE, "run_id": RUN_ID}, format="json")
    assert trace.status_code == 201
    batch = make_batch(alice, [("What is 2+2?", "c1")], idempotency_key="quiz")
    endpoint = Endpoint.objects.create(
        owner=alice, url="http://127.0.0.1:9/alice", events=["batch.completed"], secret="s"
    )
    return {
        "webhook": str(endpoint.pk),
        "trace_file": trace.json()["id"],
        "log_entry": LogEntry.objects.get().pk,
        "batch": str(batch.pk),
        "interaction": Interaction.objects.get().pk,
    }


@pytest.fixture
def bob_api(bob):
    return client_for(bob)


def alice_state(alice, alice_root) -> str:
    """Everything of alice's, rows and file bytes, as one comparable text."""
    rows = [
        list(Run.objects.filter(owner=alice).values()),
        list(LogEntry.objects.filter(run__owner=alice).values()),
        list(TraceFile.objects.filter(owner=alice).values()),
        list(Batch.objects.filter(owner=alice).values()),
        list(Interaction.objects.filter(batch__owner=alice).values()),
        list(Endpoint.objects.filter(owner=alice).values()),
        sorted((str(p), p.read_bytes()) for p in alice_root.rglob("*") if p.is_file()),
    ]
    return repr(rows)


def same_as_missing(theirs, missing, *pairs, ignore=()):
    """Same status and same body, once each hidden identifier reads as the missing one
    (and but for the top-level keys in ``ignore``, such as a timestamp)."""
    assert theirs.status_code == missing.status_code, (theirs.content, missing.content)
    if not theirs.get("Content-Type", "").startswith("application/json"):
        assert theirs.content == missing.content
        return
    body, expected = theirs.json(), missing.json()
    for hidden_id, missing_id in pairs:
        body = swap(body, hidden_id, missing_id)
    # Every answer has a request id of its own, whoever asks.
    for key in ("request_id", *ignore):
        body.pop(key, None), expected.pop(key, None)
    assert body == expected


def swap(value, hidden_id, missing_id):
    """``value`` with the hidden identifier read as the missing one: an echoed
    ``id``, or inside a sentence ("No run with run_id '...'")."""
    if isinstance(value, dict):
        return {
            key: missing_id
            if key == "id" and item == hidden_id
            else swap(item, hidden_id, missing_id)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [swap(item, hidden_id, missing_id) for item in value]
    if isinstance(value, str):
        return value.replace(str(hidden_id), str(missing_id)) if len(str(hidden_id)) > 3 else value
    return value


def without_ids(body: dict) -> dict:
    """A runs batch result without the identifiers the two requests chose."""
    return {**body, "runs": [{**item, "event_id": 0, "run_id": 0} for item in body["runs"]]}


# One case per (route name, method): bob aims at alice's object and at a missing one.


def run_list_get(bob_api, ids):
    assert bob_api.get("/api/v1/runs/").json()["results"] == []
    theirs = bob_api.get("/api/v1/runs/", {"owner": "alice", "fields": "run_id"})
    missing = bob_api.get("/api/v1/runs/", {"owner": "nobody", "fields": "run_id"})
    same_as_missing(theirs, missing, ("alice", "nobody"))
    assert theirs.json()["results"] == []


def run_list_post(bob_api, ids):
    # alice's event_id and run_id are free for bob: his own new run, not "existing".
    theirs = bob_api.post("/api/v1/runs/", run(EVENT_ID, RUN_ID), format="json")
    assert theirs.status_code == 201
    assert theirs.json()["owner"] == "bob"
    again = bob_api.post("/api/v1/runs/", run(EVENT_ID, RUN_ID), format="json")
    assert again.status_code == 200  # his own retry, now
    assert Run.objects.filter(run_id=RUN_ID).count() == 2


def run(event_id=None, run_id=None, **fields):
    from tests.conftest import make_run

    return make_run(event_id=event_id or str(uuid.uuid4()), run_id=run_id or f"r-{uuid.uuid4()}")


def runs_batch(path):
    def case(bob_api, ids):
        for query in ("?dry_run=true", ""):
            theirs = bob_api.post(
                f"{path}{query}", {"runs": [run(EVENT_ID, RUN_ID)]}, format="json"
            )
            fresh = bob_api.post(f"{path}{query}", {"runs": [run()]}, format="json")
            assert theirs.status_code == fresh.status_code == (200 if query else 201)
            assert without_ids(theirs.json()) == without_ids(fresh.json())
            assert theirs.json()["created"] == 1 and theirs.json()["existing"] == 0
        # bob's run of that name now exists; a clash is reported as his own, never alice's
        clash = bob_api.post(path, {"runs": [run(run_id=RUN_ID)]}, format="json").json()
        assert "another event_id" in clash["errors"][0]["error"]

    return case


def run_detail_get(bob_api, ids):
    same_as_missing(
        bob_api.get(f"/api/v1/runs/{RUN_ID}/"),
        bob_api.get(f"/api/v1/runs/{MISSING_RUN}/"),
        (RUN_ID, MISSING_RUN),
    )
    same_as_missing(
        bob_api.get(f"/api/v1/runs/{RUN_ID}/", {"owner": "alice", "fields": "run_id"}),
        bob_api.get(f"/api/v1/runs/{MISSING_RUN}/", {"owner": "alice", "fields": "run_id"}),
        (RUN_ID, MISSING_RUN),
    )


def run_detail_patch(bob_api, ids):
    change = {"status": "failure", "error_summary": "bob was here"}
    same_as_missing(
        bob_api.patch(f"/api/v1/runs/{RUN_ID}/", change, format="json"),
        bob_api.patch(f"/api/v1/runs/{MISSING_RUN}/", change, format="json"),
        (RUN_ID, MISSING_RUN),
    )


def traces_write(bob_api, ids):
    theirs = bob_api.post("/api/v1/traces/write", {**TRACE, "trace_data": "bob's"}, format="json")
    assert theirs.status_code == 201
    assert theirs.json()["file_path"] == "nightly/trace.json"  # the path as he sent it
    assert TraceFile.objects.filter(path="nightly/trace.json").count() == 2
    stored = bob_api.get(f"/api/v1/traces/{theirs.json()['id']}/content")
    assert b"".join(stored.streaming_content) == b"bob's"


def traces_write_batch(bob_api, ids):
    files = [{**TRACE, "trace_data": "bob's", "run_id": RUN_ID}]
    body = bob_api.post("/api/v1/traces/write-batch", {"files": files}, format="json").json()
    assert body["summary"]["successful"] == 1
    assert TraceFile.objects.filter(path="nightly/trace.json").count() == 2


def tracefile_list_get(bob_api, ids):
    for query in ({}, {"run_id": RUN_ID}, {"path_prefix": "nightly/"}, {"fields": "path"}):
        assert bob_api.get("/api/v1/traces/", query).json()["results"] == []


def tracefile_detail_get(bob_api, ids):
    same_as_missing(
        bob_api.get(f"/api/v1/traces/{ids['trace_file']}/"),
        bob_api.get(f"/api/v1/traces/{MISSING_PK}/"),
    )


def tracefile_content_get(bob_api, ids):
    same_as_missing(
        bob_api.get(f"/api/v1/traces/{ids['trace_file']}/content"),
        bob_api.get(f"/api/v1/traces/{MISSING_PK}/content"),
    )


def setup_logs_get(bob_api, ids):
    for query in ({}, {"tail": 5}, {"owner": "alice"}, {"fields": "message"}):
        same_as_missing(
            bob_api.get(f"/api/v1/runs/{RUN_ID}/setup_logs", query),
            bob_api.get(f"/api/v1/runs/{MISSING_RUN}/setup_logs", query),
            (RUN_ID, MISSING_RUN),
        )


def setup_logs_post(bob_api, ids):
    # Pre-claiming alice's client_id, or appending at all, is a missing run's 404.
    body = {"logs": [{"level": "info", "message": "bob's", "client_id": CLIENT_ID}], "dropped": 1}
    same_as_missing(
        bob_api.post(f"/api/v1/runs/{RUN_ID}/setup_logs", body, format="json"),
        bob_api.post(f"/api/v1/runs/{MISSING_RUN}/setup_logs", body, format="json"),
        (RUN_ID, MISSING_RUN),
    )


def setup_log(method):
    def case(bob_api, ids):
        # Resending alice's client_id would have answered her line back (200).
        line = {"level": "info", "message": "bob's", "client_id": CLIENT_ID}
        send = getattr(bob_api, method)
        same_as_missing(
            send(f"/api/v1/runs/{RUN_ID}/setup_log", line, format="json"),
            send(f"/api/v1/runs/{MISSING_RUN}/setup_log", line, format="json"),
            (RUN_ID, MISSING_RUN),
        )

    return case


def batch_get(bob_api, ids):
    asks = [
        ("runs", RUN_ID, MISSING_RUN),
        ("trace_files", ids["trace_file"], MISSING_PK),
        ("log_entries", ids["log_entry"], MISSING_PK),
        ("batches", ids["batch"], MISSING_UUID),
        ("interactions", ids["interaction"], MISSING_PK),
    ]
    for resource_type, hidden_id, missing_id in asks:
        for extra in (
            {},
            {"owner": "alice"},
            {"fields": ["id"] if resource_type != "runs" else ["run_id"]},
        ):
            theirs, missing = (
                bob_api.post(
                    "/api/v1/batch/get",
                    {"resource_type": resource_type, "ids": [key], **extra},
                    format="json",
                )
                for key in (hidden_id, missing_id)
            )
            same_as_missing(theirs, missing, (hidden_id, missing_id), ignore={"processed_at"})
            assert theirs.json()["results"][0]["status_code"] == 404


def batch_list_get(bob_api, ids):
    assert bob_api.get("/api/v1/batches/").json()["results"] == []
    assert bob_api.get("/api/v1/batches/", {"status": "queued"}).json()["results"] == []


def batch_list_post(bob_api, ids):
    # alice's Idempotency-Key is bob's to use: his own new batch, never hers.
    upload = csv_upload([("bob's question", "b1")])
    response = bob_api.post(
        "/api/v1/batches/", {"file": upload}, format="multipart", HTTP_IDEMPOTENCY_KEY="quiz"
    )
    assert response.status_code == 202
    assert response.json()["batch_id"] != ids["batch"]


def batch_route(method, suffix=""):
    def case(bob_api, ids):
        send = getattr(bob_api, method)
        same_as_missing(
            send(f"/api/v1/batches/{ids['batch']}/{suffix}"),
            send(f"/api/v1/batches/{MISSING_UUID}/{suffix}"),
            (ids["batch"], MISSING_UUID),
        )

    return case


def webhook_list_get(bob_api, ids):
    assert bob_api.get("/api/v1/webhooks/").json()["results"] == []


@override_settings(WEBHOOKS_ALLOW_PRIVATE=True)
def webhook_list_post(bob_api, ids):
    # bob's own endpoint at alice's URL: his, never a way to hers.
    response = bob_api.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/alice", "events": ["batch.completed"]},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["id"] != ids["webhook"]


def webhook_route(method, suffix=""):
    def case(bob_api, ids):
        send = getattr(bob_api, method)
        same_as_missing(
            send(f"/api/v1/webhooks/{ids['webhook']}/{suffix}"),
            send(f"/api/v1/webhooks/{MISSING_UUID}/{suffix}"),
            (ids["webhook"], MISSING_UUID),
        )

    return case


ROUTES = {
    ("run-list", "get"): run_list_get,
    ("run-list", "post"): run_list_post,
    ("run-detail", "get"): run_detail_get,
    ("run-detail", "patch"): run_detail_patch,
    ("run-batch", "post"): runs_batch("/api/v1/runs/batch"),
    ("run-batch-transactional", "post"): runs_batch("/api/v1/runs/batch-transactional"),
    ("tracefile-write", "post"): traces_write,
    ("tracefile-write-batch", "post"): traces_write_batch,
    ("tracefile-list", "get"): tracefile_list_get,
    ("tracefile-detail", "get"): tracefile_detail_get,
    ("tracefile-content", "get"): tracefile_content_get,
    ("setup-logs", "get"): setup_logs_get,
    ("setup-logs", "post"): setup_logs_post,
    ("setup-log", "post"): setup_log("post"),
    ("setup-log", "patch"): setup_log("patch"),
    ("batch-get", "post"): batch_get,
    ("batch-list", "get"): batch_list_get,
    ("batch-list", "post"): batch_list_post,
    ("batch-detail", "get"): batch_route("get"),
    ("batch-cancel", "post"): batch_route("post", "cancel"),
    ("batch-interactions", "get"): batch_route("get", "interactions/"),
    ("batch-results", "get"): batch_route("get", "results"),
    ("batch-retry-failed", "post"): batch_route("post", "retry-failed"),
    ("webhook-list", "get"): webhook_list_get,
    ("webhook-list", "post"): webhook_list_post,
    ("webhook-detail", "get"): webhook_route("get"),
    ("webhook-detail", "delete"): webhook_route("delete"),
    ("webhook-rotate-secret", "post"): webhook_route("post", "rotate-secret"),
    ("webhook-deliveries", "get"): webhook_route("get", "deliveries"),
}


@pytest.mark.parametrize("route", list(ROUTES), ids=lambda route: f"{route[1]} {route[0]}")
def test_another_owner_is_answered_as_for_a_missing_object_and_nothing_changes(
    route, hidden, alice, alice_root, bob_api
):
    before = alice_state(alice, alice_root)
    ROUTES[route](bob_api, hidden)
    assert alice_state(alice, alice_root) == before


def api_routes(patterns=None, prefix=""):
    """(name, method) for every method every /api/v1/ route serves."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from api_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and (prefix + str(pattern.pattern)).lstrip(
            "^"
        ).startswith("api/v1/"):
            view = pattern.callback
            cls = getattr(view, "cls", None) or view.view_class
            if getattr(view, "actions", None):  # a viewset route
                methods = set(view.actions)
            else:
                methods = {m for m in cls.http_method_names if hasattr(cls, m)}
            allowed = set(cls.http_method_names) - {"head", "options", "trace"}
            for method in sorted(methods & allowed):
                yield pattern.name, method


def test_every_api_route_is_in_the_table():
    served = set(api_routes())
    assert served - set(ROUTES) == set(), "add a cross-owner case for each new route"
    assert set(ROUTES) - served == set()


# Staff read every owner's objects; ordinary users and staff write only their own.


@pytest.fixture
def staff_api(staff):
    return client_for(staff)


def test_staff_list_every_owners_runs_and_filter_them_by_owner(hidden, bob_api, staff_api):
    bob_api.post("/api/v1/runs/", run(EVENT_ID, RUN_ID), format="json")
    listed = staff_api.get("/api/v1/runs/", {"fields": "run_id,owner"}).json()["results"]
    assert sorted(item["owner"] for item in listed) == ["alice", "bob"]
    only_bob = staff_api.get("/api/v1/runs/", {"owner": "bob"}).json()["results"]
    assert [item["owner"] for item in only_bob] == ["bob"]


def test_a_run_id_of_one_owner_reads_for_staff_and_several_owners_need_owner(
    hidden, bob_api, staff_api
):
    assert staff_api.get(f"/api/v1/runs/{RUN_ID}/").json()["owner"] == "alice"
    bob_api.post("/api/v1/runs/", run(run_id=RUN_ID), format="json")
    ambiguous = staff_api.get(f"/api/v1/runs/{RUN_ID}/")
    assert ambiguous.status_code == 409
    assert ambiguous.json()["details"] == {"run_id": RUN_ID, "owners": ["alice", "bob"]}
    assert "owner=" in ambiguous.json()["error"]
    chosen = staff_api.get(f"/api/v1/runs/{RUN_ID}/", {"owner": "bob"})
    assert chosen.json()["owner"] == "bob"
    lines = staff_api.get(f"/api/v1/runs/{RUN_ID}/setup_logs", {"owner": "alice"}).json()
    assert [line["client_id"] for line in lines["results"]] == [CLIENT_ID]


def test_staff_writing_a_run_id_others_use_write_their_own(hidden, staff_api):
    # The run_id is alice's: staff's PATCH and appends do not land in her run.
    patch = staff_api.patch(f"/api/v1/runs/{RUN_ID}/", {"status": "failure"}, format="json")
    assert patch.status_code == 404
    line = {"logs": [{"level": "info", "message": "staff"}]}
    assert (
        staff_api.post(f"/api/v1/runs/{RUN_ID}/setup_logs", line, format="json").status_code == 404
    )
    assert staff_api.post("/api/v1/runs/", run(run_id=RUN_ID), format="json").status_code == 201
    # Now staff have one of that name too: theirs comes first, for reads and writes.
    assert staff_api.get(f"/api/v1/runs/{RUN_ID}/").json()["owner"] == "staff"
    assert (
        staff_api.post(f"/api/v1/runs/{RUN_ID}/setup_logs", line, format="json").status_code == 200
    )
    assert Run.objects.get(owner__username="alice").status == "running"


def test_the_batch_get_tells_staff_when_several_owners_use_a_run_id(hidden, bob_api, staff_api):
    bob_api.post("/api/v1/runs/", run(run_id=RUN_ID), format="json")
    ask = {"resource_type": "runs", "ids": [RUN_ID], "fields": ["owner"]}
    [item] = staff_api.post("/api/v1/batch/get", ask, format="json").json()["results"]
    assert (item["status_code"], item["data"]) == (409, None)
    assert "owner" in item["error"]
    chosen = staff_api.post("/api/v1/batch/get", {**ask, "owner": "alice"}, format="json")
    assert chosen.json()["results"][0]["data"] == {"owner": "alice"}
    # bob alone sees his own, never an ambiguity
    [own] = bob_api.post("/api/v1/batch/get", ask, format="json").json()["results"]
    assert own["data"] == {"owner": "bob"}


# Users who leave.


def test_a_deactivated_users_token_stops_working_and_staff_still_read_their_runs(
    hidden, alice, staff_api
):
    token = Token.objects.get(user=alice).key
    alice.is_active = False
    alice.save()
    gone = APIClient()
    gone.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert gone.get("/api/v1/runs/").status_code == 401
    assert staff_api.get(f"/api/v1/runs/{RUN_ID}/").json()["owner"] == "alice"


def test_a_deleted_users_objects_stay_readable_by_staff(hidden, alice, staff_api):
    alice.delete()
    detail = staff_api.get(f"/api/v1/runs/{RUN_ID}/")
    assert (detail.status_code, detail.json()["owner"]) == (200, None)
    content = staff_api.get(f"/api/v1/traces/{hidden['trace_file']}/content")
    assert b"".join(content.streaming_content) == TRACE["trace_data"].encode()
    lines = staff_api.get(f"/api/v1/runs/{RUN_ID}/setup_logs").json()["results"]
    assert [line["client_id"] for line in lines] == [CLIENT_ID]
    assert staff_api.get(f"/api/v1/batches/{hidden['batch']}/").json()["owner"] is None


ADMIN_LISTS = {
    # changelist: (the owner filter's query parameter, the owner of a listed object)
    "traces/run": ("owner__id__exact", lambda obj: obj.owner),
    "traces/tracefile": ("owner__id__exact", lambda obj: obj.owner),
    "setuplogs/logentry": ("run__owner__id__exact", lambda obj: obj.run.owner),
    "batches/batch": ("owner__id__exact", lambda obj: obj.owner),
    "batches/interaction": ("batch__owner__id__exact", lambda obj: obj.batch.owner),
}


@pytest.mark.parametrize("changelist", list(ADMIN_LISTS))
def test_every_admin_list_shows_the_owner_and_filters_by_it(
    changelist, hidden, admin_client, alice, bob
):
    make_batch(bob, [("bob's", "b1")])  # something of bob's in the batch lists too
    page = admin_client.get(f"/admin/{changelist}/").content.decode()
    assert "column-owner" in page and "By owner" in page
    parameter, owner_of = ADMIN_LISTS[changelist]
    listed = admin_client.get(f"/admin/{changelist}/", {parameter: alice.pk}).context["cl"]
    assert listed.result_count >= 1
    assert {owner_of(obj) for obj in listed.result_list} == {alice}
