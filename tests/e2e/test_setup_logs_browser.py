import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.setuplogs.conftest import line
from traces.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT = 15  # seconds; the page polls every 2


def shown_lines(browser):
    return browser.find_elements(By.CSS_SELECTOR, "#setup-log li")


def wait_for_lines(browser, count):
    WebDriverWait(browser, WAIT).until(lambda driver: len(shown_lines(driver)) >= count)
    return shown_lines(browser)


def open_run_page(browser, login_browser, live_server, staff, run_id):
    login_browser(browser, staff)
    pk = Run.objects.get(run_id=run_id).pk
    browser.get(f"{live_server.url}/admin/traces/run/{pk}/change/")


def append(api, run_id, *lines):
    response = api.post(f"/api/v1/runs/{run_id}/setup_logs", {"logs": list(lines)}, format="json")
    assert response.json()["logs_added"] == len(lines)


def test_a_running_run_page_shows_new_log_lines_without_a_reload(
    browser, login_browser, live_server, staff, api, run_factory
):
    run = run_factory(status="running")
    assert api.post("/api/v1/runs/", run, format="json").status_code == 201
    append(api, run["run_id"], line("cloning the repository"))
    open_run_page(browser, login_browser, live_server, staff, run["run_id"])
    assert wait_for_lines(browser, 1)[0].text.endswith("cloning the repository")
    page = browser.find_element(By.TAG_NAME, "html")

    append(
        api,
        run["run_id"],
        line("disk almost full", level="warning"),
        line("<b>make</b> failed", level="error"),
    )

    shown = wait_for_lines(browser, 3)
    assert [e.find_element(By.CLASS_NAME, "message").text for e in shown] == [
        "cloning the repository",
        "disk almost full",
        "<b>make</b> failed",  # shown as text, not markup
    ]
    assert [e.get_attribute("class") for e in shown] == [
        "level-info",
        "level-warning",
        "level-error",
    ]
    assert [e.get_attribute("data-seq") for e in shown] == ["1", "2", "3"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#setup-log li b")
    assert page == browser.find_element(By.TAG_NAME, "html")  # the same page: no reload


def test_the_page_stops_following_when_the_run_ends_and_shows_its_last_lines(
    browser, login_browser, live_server, staff, api, run_factory
):
    run = run_factory(status="running")
    api.post("/api/v1/runs/", run, format="json")
    open_run_page(browser, login_browser, live_server, staff, run["run_id"])
    state = browser.find_element(By.CLASS_NAME, "setup-log-state")
    WebDriverWait(browser, WAIT).until(lambda _: "Following" in state.text)

    append(api, run["run_id"], line("done", level="info"))
    patch = api.patch(f"/api/v1/runs/{run['run_id']}/", {"status": "success"}, format="json")
    assert patch.status_code == 200

    WebDriverWait(browser, WAIT).until(lambda _: "not following" in state.text)
    assert "The run is success" in state.text
    assert [e.text.endswith("done") for e in shown_lines(browser)] == [True]


def test_a_finished_run_page_shows_the_last_lines_and_says_it_is_not_following(
    browser, login_browser, live_server, staff, api, run_factory
):
    run = run_factory(status="failure")
    api.post("/api/v1/runs/", run, format="json")
    append(api, run["run_id"], *[line(f"line {n}") for n in range(3)])
    append(api, run["run_id"], line("boom", level="critical"))
    open_run_page(browser, login_browser, live_server, staff, run["run_id"])

    shown = wait_for_lines(browser, 4)
    assert shown[-1].get_attribute("class") == "level-critical"
    assert shown[-1].find_element(By.CLASS_NAME, "level").text == "CRITICAL"
    state = browser.find_element(By.CLASS_NAME, "setup-log-state")
    assert state.text == "The run is failure; not following."
