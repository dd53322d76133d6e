import pytest
from selenium.webdriver.common.by import By

from traces.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_run_page_links_to_its_parent_and_shows_its_metrics(
    browser, login_browser, live_server, staff, api, run_factory
):
    parent, child = run_factory(), run_factory()
    child["parent_run_id"] = parent["run_id"]
    assert (
        api.post("/api/v1/runs/batch", {"runs": [parent, child]}, format="json").status_code == 201
    )
    login_browser(browser, staff)

    browser.get(
        f"{live_server.url}/admin/traces/run/{Run.objects.get(run_id=child['run_id']).pk}/change/"
    )

    link = browser.find_element(By.LINK_TEXT, parent["run_id"])
    link.click()
    assert browser.find_element(By.TAG_NAME, "h2").text == parent["run_id"]
    assert '"pages"' in browser.find_element(By.CSS_SELECTOR, "pre.batchsvc-json").text


def test_swagger_ui_renders_the_api_from_local_static_files(
    browser, login_browser, live_server, staff
):
    from selenium.webdriver.support.ui import WebDriverWait

    login_browser(browser, staff)
    browser.get(f"{live_server.url}/api/docs/")
    WebDriverWait(browser, 15).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    )
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/api/v1/runs/batch" in {p.replace("\u200b", "") for p in paths}
