"""GET /traces/ and /traces/{id}/content, the admin pages, and another storage."""

import pytest
from django.urls import reverse

from tests.conftest import error_body
from traces.models import TraceFile

pytestmark = pytest.mark.django_db


def write(api, name, data="x", directory="nightly", **extra):
    files = [{"trace_data": data, "file_name": name, "output_directory": directory, **extra}]
    body = api.post("/api/v1/traces/write-batch", {"files": files}, format="json").json()
    assert body["success"], body
    return body["results"][0]


@pytest.fixture
def run_id(api, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/batch", {"runs": [run]}, format="json")
    return run["run_id"]


def test_the_list_shows_files_newest_first(api, alice_root):
    first, second = write(api, "a.txt", "aaa"), write(api, "b.json", "{}")
    body = api.get("/api/v1/traces/").json()
    assert [item["id"] for item in body["results"]] == [second["id"], first["id"]]
    item = body["results"][1]
    assert item["path"] == "nightly/a.txt"
    assert item["file_name"] == "a.txt"
    assert item["size"] == 3
    assert item["run_id"] is None
    assert item["content_url"] == f"/api/v1/traces/{first['id']}/content"


def test_the_list_filters_by_run_id_and_path_prefix(api, alice_root, run_id):
    write(api, "a.txt", directory="nightly/one", run_id=run_id)
    write(api, "b.txt", directory="nightly/two")
    write(api, "c.txt", directory="weekly")
    by_run = api.get("/api/v1/traces/", {"run_id": run_id}).json()["results"]
    assert [item["path"] for item in by_run] == ["nightly/one/a.txt"]
    assert by_run[0]["run_id"] == run_id
    nightly = api.get("/api/v1/traces/", {"path_prefix": "nightly/"}).json()["results"]
    assert sorted(item["path"] for item in nightly) == ["nightly/one/a.txt", "nightly/two/b.txt"]


def test_the_list_pages_with_a_cursor(api, alice_root):
    for i in range(5):
        write(api, f"{i}.txt")
    seen, url = [], "/api/v1/traces/?page_size=2"
    while url:
        body = api.get(url).json()
        seen += [item["path"] for item in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(f"nightly/{i}.txt" for i in range(5))
    assert len(seen) == 5


def test_content_streams_the_file_bytes(api, alice_root):
    written = write(api, "t.json", '{"a": "ü"}')
    response = api.get(f"/api/v1/traces/{written['id']}/content")
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == '{"a": "ü"}'.encode()
    assert response["Content-Type"] == "application/json"
    assert response["Content-Security-Policy"] == "sandbox"


@pytest.mark.parametrize(
    ("name", "content_type", "disposition"),
    [
        ("t.txt", "text/plain; charset=utf-8", "inline"),
        ("t.log", "text/plain; charset=utf-8", "inline"),
        ("t.html", "text/plain; charset=utf-8", "inline"),
        ("t.svg", "application/octet-stream", "attachment"),
        ("t.bin", "application/octet-stream", "attachment"),
    ],
)
def test_content_is_never_served_as_active_content(
    api, alice_root, name, content_type, disposition
):
    written = write(api, name, "<script>alert(1)</script>")
    response = api.get(f"/api/v1/traces/{written['id']}/content")
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith(disposition)


def test_content_of_an_unknown_file_is_a_json_404(api, alice_root):
    response = api.get("/api/v1/traces/999/content")
    assert response.status_code == 404
    assert error_body(response) == {"error": "No TraceFile matches the given query."}


def test_content_of_a_file_gone_from_the_storage_is_a_json_404(api, alice_root):
    written = write(api, "t.txt")
    (alice_root / "nightly" / "t.txt").unlink()
    response = api.get(f"/api/v1/traces/{written['id']}/content")
    assert response.status_code == 404
    assert response.json()["error"] == "The trace file is recorded but missing from the storage."


def test_reading_needs_authentication(anonymous, api, alice_root):
    written = write(api, "t.txt")
    assert anonymous.get("/api/v1/traces/").status_code == 401
    assert anonymous.get(f"/api/v1/traces/{written['id']}/content").status_code == 401


def test_another_storage_backend_works_by_configuration_alone(api, settings, tmp_path):
    """Django's in-memory storage stands in for S3: no file system, no rename,
    no overwrite of its own. Writing, rewriting and reading still work."""
    settings.STORAGES = {
        **settings.STORAGES,
        "traces": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    first = write(api, "t.txt", "one")
    second = write(api, "t.txt", "two, longer")
    assert second["id"] == first["id"]
    assert second["file_path"] == "nightly/t.txt"
    response = api.get(f"/api/v1/traces/{first['id']}/content")
    assert b"".join(response.streaming_content) == b"two, longer"
    assert TraceFile.objects.get().size == len("two, longer")


# Admin ----------------------------------------------------------------------


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def change_page(admin_client, pk) -> str:
    return admin_client.get(reverse("admin:traces_tracefile_change", args=[pk])).content.decode()


def test_the_admin_lists_filters_by_owner_and_searches_by_run_and_path(
    admin_client, api, alice, alice_root, run_id
):
    write(api, "linked.txt", directory="nightly/one", run_id=run_id)
    write(api, "other.txt", directory="weekly")
    url = reverse("admin:traces_tracefile_changelist")
    page = admin_client.get(url).content.decode()
    assert "nightly/one/linked.txt" in page
    assert "weekly/other.txt" in page
    by_run = admin_client.get(url, {"q": run_id}).content.decode()
    assert "nightly/one/linked.txt" in by_run
    assert "weekly/other.txt" not in by_run
    assert (
        "weekly/other.txt" in admin_client.get(url, {"owner__id__exact": alice.pk}).content.decode()
    )
    nobody = admin_client.get(url, {"owner__id__exact": alice.pk + 1000}).content.decode()
    assert "weekly/other.txt" not in nobody
    found = admin_client.get(url, {"q": "weekly"}).content.decode()
    assert "weekly/other.txt" in found
    assert "linked.txt" not in found


def test_the_admin_shows_a_text_file_read_only_and_escaped(admin_client, api, alice_root):
    written = write(api, "t.txt", "line one\n<b>not bold</b>")
    page = change_page(admin_client, written["id"])
    assert '<pre class="batchsvc-trace">line one\n&lt;b&gt;not bold&lt;/b&gt;</pre>' in page
    assert "<textarea" not in page
    assert 'name="_save"' not in page
    assert "deletelink" not in page


def test_the_admin_cuts_a_long_text_file(admin_client, api, alice_root, settings):
    settings.TRACES_ADMIN_PREVIEW_BYTES = 5
    written = write(api, "t.txt", "ééé")  # 6 bytes: the cut falls inside a character
    page = change_page(admin_client, written["id"])
    assert '<pre class="batchsvc-trace">éé\n… cut at 5 of 6 bytes</pre>' in page


def test_the_admin_does_not_show_a_binary_file(admin_client, api, alice_root):
    written = write(api, "t.bin", "a\x00b")
    page = change_page(admin_client, written["id"])
    assert "Binary file (3 bytes): not shown." in page
