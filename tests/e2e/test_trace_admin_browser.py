import pytest
from selenium.webdriver.common.by import By

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_finds_a_trace_file_by_path_and_reads_it(
    browser, login_browser, live_server, staff, api, trace_root
):
    files = [
        {
            "trace_data": "=== Trace 7 ===\nstep 1: ok",
            "file_name": "t7.txt",
            "output_directory": "n",
        },
        {"trace_data": "{}", "file_name": "other.json", "output_directory": "n"},
    ]
    assert api.post("/api/v1/traces/write-batch", {"files": files}, format="json").json()["success"]
    login_browser(browser, staff)

    browser.get(f"{live_server.url}/admin/traces/tracefile/?q=t7")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    rows[0].find_element(By.LINK_TEXT, "n/t7.txt").click()

    content = browser.find_element(By.CSS_SELECTOR, "pre.batchsvc-trace").text
    assert content == "=== Trace 7 ===\nstep 1: ok"
    assert browser.find_elements(By.CSS_SELECTOR, "input[name=_save]") == []
