"""A run's admin page in Chromium: the log lines up, folds away, and nothing
scrolls sideways at 1280 px."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.pages import no_sideways_scroll
from traces.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def run_page(browser, login_browser, live_server, staff, api, run_factory, alice_root):
    api.post("/api/v1/runs", run_factory(run_id="nightly-9"), format="json")
    logs = [
        {"level": ("info", "warning", "critical")[n % 3], "message": f"m{n}"} for n in range(12)
    ]
    api.post("/api/v1/runs/nightly-9/setup_logs", {"logs": logs}, format="json")
    trace = {
        "trace_data": "{}",
        "file_name": "t.json",
        "output_directory": "n",
        "run_id": "nightly-9",
    }
    api.post("/api/v1/traces/write", trace, format="json")
    browser.set_window_size(1280, 1000)
    login_browser(browser, staff)
    browser.get(f"{live_server.url}/admin/traces/run/{Run.objects.get().pk}/change/")
    WebDriverWait(browser, 15).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#setup-log li")) == 12
    )
    return browser


def test_log_columns_line_up_for_one_and_two_digit_seqs(run_page):
    messages = run_page.find_elements(By.CSS_SELECTOR, "#setup-log li .message")
    assert {message.location["x"] for message in messages} == {messages[0].location["x"]}
    seqs = run_page.find_elements(By.CSS_SELECTOR, "#setup-log li .seq")
    assert [seq.text for seq in seqs][8:10] == ["#9", "#10"]


def test_the_log_folds_away_and_back(run_page):
    first = run_page.find_element(By.CSS_SELECTOR, "#setup-log li")
    summary = run_page.find_element(By.CSS_SELECTOR, "#setup-log summary")
    summary.click()
    assert not first.is_displayed()
    summary.click()
    assert first.is_displayed()


def test_run_and_trace_pages_do_not_scroll_sideways_at_1280(run_page, live_server):
    assert no_sideways_scroll(run_page)
    run_page.find_element(By.LINK_TEXT, "n/t.json").click()
    assert run_page.find_element(By.ID, "trace-download").get_attribute("download") is not None
    assert no_sideways_scroll(run_page)
    for page in ("traces/run", "traces/tracefile", "setuplogs/logentry"):
        run_page.get(f"{live_server.url}/admin/{page}/")
        assert no_sideways_scroll(run_page), page
