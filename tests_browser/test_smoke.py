from __future__ import annotations

import pytest

from tests_browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_page_renders_without_csp_violations(page, live_server):
    page.goto(f"{live_server.url}/")
    page.wait_for_load_state("networkidle")
    assert "/accounts/login/" in page.url
    assert page.locator("input[name=login]").is_visible()
    screenshot(page, "login")
    assert page.csp_violations == []  # type: ignore[attr-defined]


def test_htmx_loaded_from_own_server(page, live_server):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live_server.url}/accounts/login/")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.htmx") == "object"
    assert all(url.startswith(live_server.url) for url in requests), requests
