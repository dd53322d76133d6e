"""Fixtures for end-to-end tests: a headless Chromium driven by Selenium.

Chromium and its driver come from Debian (`chromium`, `chromium-driver`); .ci/run
installs them and sets REQUIRE_BROWSER=1 so that CI fails rather than skips when
they are missing. On a machine without them the browser tests are skipped.
"""

import os
import shutil

import batchsvc_client
import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.conftest import make_run
from tests.support.front import FrontServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # The report of each phase, on the test, for the browser fixture to read.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(request):
    """A headless Chromium (Selenium WebDriver), closed after the test."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER is set but chromium/chromedriver are not installed")
        pytest.skip("needs Debian's chromium and chromium-driver (bash .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1024",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        # What the page looked like, for whoever reads the failure.
        shots = settings.BASE_DIR / "var" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / f"{request.node.name[:150]}.png"))
    driver.quit()


@pytest.fixture
def login_browser(live_server):
    """``login_browser(driver, user)``: give the browser a logged-in admin session."""

    def login(driver, user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        driver.get(f"{live_server.url}/admin/login/")  # the cookie needs the domain open
        driver.add_cookie({"name": cookie.key, "value": cookie.value, "path": "/"})

    return login


@pytest.fixture
def python_client(live_server, alice):
    """The Python client (batchsvc_client.Client) as alice against the live server,
    with short retry backoffs. (Not ``client``: that is pytest-django's test client.)"""
    token = Token.objects.create(user=alice).key
    with batchsvc_client.Client(live_server.url, token=token, backoff=0.01) as api_client:
        yield api_client


@pytest.fixture
def front(live_server):
    """A FrontServer (tests/e2e/front.py) in front of the live server."""
    front = FrontServer(live_server.url).start()
    yield front
    front.stop()


@pytest.fixture
def run_id(api):
    """The run_id of a run alice stored through the API."""
    run = make_run()
    assert api.post("/api/v1/runs/", run, format="json").status_code == 201
    return run["run_id"]
