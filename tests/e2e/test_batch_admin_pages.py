"""Running batches from the admin, in Chromium at 1280 px with a real worker:
upload with a preview, figures that agree at every refresh, items by status,
a cancelled segment, no sideways scroll."""

import threading

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from batches.models import Batch, BatchStatus, InteractionStatus
from tests.batches.factories import csv_bytes, make_batch
from tests.support.pages import no_sideways_scroll
from tests.support.stubs import Stub
from tests.support.waiting import wait_until
from tests.support.workers import Worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(browser, login_browser, live_server, staff):
    browser.set_window_size(1280, 1000)
    login_browser(browser, staff)

    def open_page(path):
        browser.get(f"{live_server.url}/admin/{path}")
        return browser

    return open_page


def figures(browser) -> dict:
    """Every figure of the batch on the page, as shown now."""
    shown = browser.execute_script(
        """
        const out = {bar: document.querySelector('.batch-progress-text').textContent, fields: {}};
        document.querySelectorAll('[data-batch-field]').forEach(el => {
          (out.fields[el.dataset.batchField] ||= []).push(el.textContent);
        });
        return out;"""
    )
    return shown


def test_an_upload_is_previewed_then_started_from_the_admin(admin_page, tmp_path, staff):
    upload = tmp_path / "questions.csv"
    upload.write_bytes(csv_bytes([("2+2?", "a"), ("and 3+3?", "a"), ("", "x"), ("hi", "b")]))
    page = admin_page("batches/batch/add/")
    assert no_sideways_scroll(page)
    page.find_element(By.NAME, "file").send_keys(str(upload))
    page.find_element(By.NAME, "name").send_keys("Quiz")
    Select(page.find_element(By.NAME, "priority")).select_by_value("high")
    page.find_element(By.NAME, "concurrency").send_keys("2")
    page.find_element(By.ID, "batch-preview").click()
    summary = page.find_element(By.CSS_SELECTOR, ".batch-preview-summary")
    WebDriverWait(page, 15).until(lambda _: "items in" in summary.text)
    assert summary.text == (
        "3 items in 2 conversations, 1 skipped (rows 4); columns: question, chat_id."
    )
    rows = page.find_elements(By.CSS_SELECTOR, ".batch-preview-rows tbody tr")
    assert [row.text.split(" ", 1)[1] for row in rows] == ["2+2? a", "and 3+3? a", "hi b"]
    assert not Batch.objects.exists()  # the preview created nothing

    page.find_element(By.ID, "batch-start").click()
    WebDriverWait(page, 15).until(lambda driver: "/change/" in driver.current_url)
    batch = Batch.objects.get()
    assert (batch.name, batch.owner, batch.total_items) == ("Quiz", staff, 3)
    assert (batch.priority, batch.concurrency) == ("high", 2)
    assert "queued with 3 items" in page.find_element(By.CSS_SELECTOR, ".messagelist").text


def test_a_bad_file_gets_the_apis_sentence_on_the_form(admin_page, tmp_path):
    upload = tmp_path / "questions.csv"
    upload.write_bytes(b"title\nno question column here\n")
    page = admin_page("batches/batch/add/")
    page.find_element(By.NAME, "file").send_keys(str(upload))
    page.find_element(By.ID, "batch-preview").click()
    summary = page.find_element(By.CSS_SELECTOR, ".batch-preview-summary")
    WebDriverWait(page, 15).until(lambda _: "question" in summary.text)
    preview_sentence = summary.text
    page.find_element(By.ID, "batch-start").click()
    errors = WebDriverWait(page, 15).until(
        lambda driver: driver.find_elements(By.ID, "batch-add-errors")
    )
    assert errors[0].text == preview_sentence
    assert not Batch.objects.exists()


def test_the_bar_counters_and_items_header_agree_at_every_refresh(admin_page, alice):
    batch = make_batch(alice, [(f"q{n}", f"c{n % 3}") for n in range(24)], options={"delay": 0.15})
    page = admin_page(f"batches/batch/{batch.pk}/change/")
    assert no_sideways_scroll(page)
    seen = []
    worker = Worker(BATCH_CONCURRENCY=2).start()
    try:

        def agree_until_done(driver):
            now = figures(driver)
            seen.append(now)
            done = {name: set(values) for name, values in now["fields"].items()}
            for name in ("status", "processed_items", "failed_items", "item_counts.succeeded"):
                assert len(done[name]) == 1, now  # the same figure wherever it is shown
            processed = int(next(iter(done["processed_items"])))
            failed = int(next(iter(done["failed_items"])))
            assert done["item_counts.succeeded"] == {str(processed)}, now  # the items header
            assert done["item_counts.failed"] == {str(failed)}, now
            assert now["bar"] == f"{(processed + failed) * 100 // 24}%", now
            return next(iter(done["status"])) == "completed"

        WebDriverWait(page, 90, poll_frequency=0.2).until(agree_until_done)
    finally:
        worker.stop()
    assert len({view["bar"] for view in seen}) > 2, "the page never showed the batch moving"
    assert seen[-1]["bar"] == "100%"
    rows = page.find_elements(By.CSS_SELECTOR, "#batch-items tbody tr")
    assert {row.get_attribute("data-status") for row in rows} == {"succeeded"}


def test_items_filter_by_status_with_counts_and_link_to_each_item(admin_page, alice):
    batch = make_batch(alice, [(f"q{n}", "") for n in range(6)])
    failed = batch.interactions.filter(row_number__in=[3, 5])
    failed.update(
        status=InteractionStatus.FAILED, error="the model said no", finished_at=timezone.now()
    )
    batch.interactions.exclude(row_number__in=[3, 5]).update(status=InteractionStatus.SUCCEEDED)
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.COMPLETED_WITH_ERRORS, processed_items=4, failed_items=2
    )
    page = admin_page(f"batches/batch/{batch.pk}/change/")
    links = page.find_element(By.ID, "batch-item-filter")
    assert "failed (2)" in links.text and "succeeded (4)" in links.text and "all (6)" in links.text
    page.find_element(By.CSS_SELECTOR, '#batch-item-filter a[data-status="failed"]').click()
    rows = page.find_elements(By.CSS_SELECTOR, "#batch-items tbody tr")
    assert [row.get_attribute("data-status") for row in rows] == ["failed", "failed"]
    assert "the model said no" in rows[0].text
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert "/admin/batches/interaction/" in page.current_url


def test_a_cancel_from_the_admin_shows_a_cancelled_segment(admin_page, alice):
    batch = make_batch(alice, [(f"q{n}", "") for n in range(10)])
    page = admin_page(f"batches/batch/{batch.pk}/change/")
    page.find_element(By.ID, "batch-cancel").click()
    # The cancel posts, then the page comes back with a message.
    WebDriverWait(page, 15).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, ".messagelist")
    )
    text = page.find_element(By.CSS_SELECTOR, ".batch-progress-text").text
    assert text == "0% · 10 cancelled"
    segment = page.find_element(By.CSS_SELECTOR, ".batch-progress-cancelled")
    assert segment.size["width"] > 0
    page.get(page.current_url.replace(f"{batch.pk}/change/", ""))
    assert "0% · 10 cancelled" in page.find_element(By.ID, "result_list").text
    assert no_sideways_scroll(page)


def test_a_cancel_while_items_run_shows_cancelling_then_the_final_counts(
    admin_page, alice, settings
):
    stub = Stub()
    gate = threading.Event()  # the provider answers nothing until the test says
    stub.default = {"json": {"text": "answer"}, "gate": gate}
    settings.BATCH_HTTP_URL = f"{stub.url}/answer"
    batch = make_batch(alice, [(f"q{n}", "") for n in range(40)], processor="http")
    worker = Worker(BATCH_CONCURRENCY=3, BATCH_HTTP_URL=settings.BATCH_HTTP_URL).start()
    try:
        wait_until(lambda: len(stub.requests) == 3, message="three items sent")
        page = admin_page(f"batches/batch/{batch.pk}/change/")
        page.find_element(By.ID, "batch-cancel").click()
        WebDriverWait(page, 15).until(
            lambda driver: driver.find_elements(By.CSS_SELECTOR, ".messagelist")
        )
        first = figures(page)["fields"]
        gate.set()  # the three running items end now
        seen = []

        def cancelled(driver):
            now = figures(driver)
            seen.append(now)
            return now["fields"]["status"][0] == "cancelled"

        WebDriverWait(page, 60, poll_frequency=0.2).until(cancelled)
    finally:
        gate.set()
        worker.stop()
        stub.stop()
    assert first["status"][0] == "cancelling"  # running items were finishing
    assert first["cancelled_items"][0] == "37"
    batch.refresh_from_db()
    final = seen[-1]["fields"]
    assert batch.status == BatchStatus.CANCELLED and batch.finished_at is not None
    assert (batch.processed_items, batch.cancelled_items) == (3, 37)
    assert final["processed_items"] == ["3"]
    assert set(final["item_counts.succeeded"]) == {"3"}
    assert set(final["cancelled_items"]) == {"37"}
    assert final["finished_at"][0] != "—"
    assert len(stub.requests) == 3  # nothing sent after the cancel


def test_no_list_or_detail_page_scrolls_sideways_at_1280_px(admin_page, alice):
    long = "word " * 60 + "x" * 300  # a long question, and one long unbroken token
    batch = make_batch(alice, [(long, "chat-" + "y" * 200) for _ in range(3)], name="n" * 200)
    item = batch.interactions.first()
    batch.interactions.update(
        status=InteractionStatus.FAILED, error="e" * 400, finished_at=timezone.now()
    )
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.FAILED)
    for path in (
        "batches/batch/",
        f"batches/batch/{batch.pk}/change/",
        "batches/interaction/",
        f"batches/interaction/{item.pk}/change/",
    ):
        page = admin_page(path)
        assert no_sideways_scroll(page), path
