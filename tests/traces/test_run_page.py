"""A run's admin page: its log first, a download of the whole log, its trace files."""

import pytest

from traces.models import Run, TraceFile

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(api, run_factory, alice_root):
    body = run_factory(run_id="nightly-7")
    api.post("/api/v1/runs", body, format="json")
    logs = [{"level": "info", "message": f"line {n}"} for n in range(12)]
    logs.append({"level": "error", "message": "make failed\tbadly"})
    api.post("/api/v1/runs/nightly-7/setup_logs", {"logs": logs}, format="json")
    for name in ("b.json", "a.txt"):
        trace = {
            "trace_data": "{}",
            "file_name": name,
            "output_directory": "n",
            "run_id": "nightly-7",
        }
        api.post("/api/v1/traces/write", trace, format="json")
    return Run.objects.get()


def test_the_log_comes_before_the_fields_and_can_be_folded(admin_client, run):
    page = admin_client.get(f"/admin/traces/run/{run.pk}/change/").content.decode()
    assert page.index('id="setup-log"') < page.index('class="form-row field-run_id')
    assert '<details open class="module" id="setup-log"' in page
    assert 'rel="icon"' in page


def test_the_whole_log_downloads_as_text_in_seq_order(admin_client, run):
    response = admin_client.get(f"/admin/traces/run/{run.pk}/log.txt")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="nightly-7.log"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 13
    assert [line.split("\t")[0] for line in lines] == [str(n) for n in range(1, 14)]
    assert lines[-1].split("\t", 3)[2:] == ["ERROR", "make failed\tbadly"]


def test_the_page_lists_the_runs_trace_files_with_links(admin_client, run):
    page = admin_client.get(f"/admin/traces/run/{run.pk}/change/").content.decode()
    files = {f.path: f.pk for f in TraceFile.objects.all()}
    assert page.index("n/a.txt") < page.index("n/b.json")
    for pk in files.values():
        assert f'href="/admin/traces/tracefile/{pk}/change/"' in page
        assert f'href="/api/v1/traces/{pk}/content"' in page


def test_a_trace_files_page_has_a_download_link(admin_client, run):
    trace_file = TraceFile.objects.get(path="n/a.txt")
    page = admin_client.get(f"/admin/traces/tracefile/{trace_file.pk}/change/").content.decode()
    assert f'<a href="/api/v1/traces/{trace_file.pk}/content" download' in page
    content = admin_client.get(f"/api/v1/traces/{trace_file.pk}/content")
    assert b"".join(content.streaming_content) == b"{}"


def test_the_log_download_needs_the_admin(client, run):
    response = client.get(f"/admin/traces/run/{run.pk}/log.txt")
    assert response.status_code == 302  # to the login page
