import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.batches.factories import make_batch
from tests.support.workers import Worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_progress_bar_follows_a_batch_processed_by_a_worker_without_a_reload(
    browser, login_browser, live_server, staff, alice
):
    batch = make_batch(alice, [(f"q{n}", "one chat") for n in range(10)], options={"delay": 0.4})
    login_browser(browser, staff)
    browser.get(f"{live_server.url}/admin/batches/batch/{batch.pk}/change/")
    text = browser.find_element(By.CSS_SELECTOR, ".batch-progress-text")
    assert text.text == "0%"
    browser.execute_script("window.notReloaded = true;")

    worker = Worker(BATCH_CONCURRENCY=1).start()
    try:
        seen = set()

        def finished(driver):
            seen.add(text.text)
            return text.text == "100%"

        WebDriverWait(browser, 60, poll_frequency=0.1).until(finished)
    finally:
        worker.stop()

    assert seen - {"0%", "100%"}, "the bar showed no step between 0% and 100%"
    assert browser.execute_script("return window.notReloaded === true;")
    bar = browser.find_element(By.CSS_SELECTOR, ".batch-progress")
    assert bar.get_attribute("data-status") == "processed"
    status = browser.find_element(By.CSS_SELECTOR, '[data-batch-field="status"]')
    assert status.text == "completed"  # the status in words
