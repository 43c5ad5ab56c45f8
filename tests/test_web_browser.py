"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright), served by
a real worker on a real broker: charts drawn from real conversations (SNAP CollegeMsg), a spam
burst published while the page is open shows up as an alert without a reload, and the account
pages work, from the alert's link and from the search box. Screenshots go to ``tmp_path``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.live_worker import (
    SPAM_URL,
    get_json,
    publish_college_msg,
    publish_events,
    spam_burst,
    start_worker,
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "needs Debian's chromium: apt-get install -y chromium (.ci/run does)"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def ready(page: Page, *cards: str) -> None:
    for card in cards:
        page.wait_for_selector(f'#{card}[data-state="ready"]', timeout=30_000)


def chart(page: Page, canvas: str) -> Any:
    """What Chart.js drew on a canvas: its labels and each dataset's data."""
    return page.evaluate(
        "(id) => { const c = Chart.getChart(id);"
        " return c && {labels: c.data.labels, data: c.data.datasets.map((d) => d.data)}; }",
        canvas,
    )


def test_page_alerts_live_and_account_pages(
    browser: Browser, kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    settings, worker, base = start_worker(kafka_bootstrap, run_id, tmp_path)
    errors: list[str] = []
    try:
        publish_college_msg(settings, 4000)
        worker.wait_drained([settings.topic("interactions")], timeout=120)

        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/")
        page.wait_for_selector("#live.on", timeout=30_000)  # the alert stream is open
        ready(page, "by-tier-card", "by-requester-card", "mixing-card", "rich-club-card")
        api = get_json(f"{base}/api/reports/responsiveness")
        drawn = chart(page, "by-tier")
        assert sorted(drawn["labels"]) == sorted(t["tier"] for t in api["by_tier"])
        assert any(v for v in drawn["data"][-1]), drawn  # response rates, not empty bars
        mixing = chart(page, "mixing")["data"][0]
        tiers = get_json(f"{base}/api/reports/tiers")
        assert sum(cell["n"] for cell in mixing) == tiers["summary"]["interactions"] > 0
        assert chart(page, "rich-club")["labels"][:3] == [5, 10, 20]
        page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

        spammer = f"{run_id}-spammer"
        page.evaluate("window.notReloaded = true")
        assert page.locator(f'li.alert[data-actor="{spammer}"]').count() == 0
        published = time.monotonic()
        publish_events(settings, spam_burst(spammer))
        alert = page.locator(f'li.alert[data-actor="{spammer}"][data-rule="R1"]')
        alert.wait_for(timeout=60_000)
        seen_after = time.monotonic() - published
        print(f"R1 alert on the page {seen_after:.2f} s after the burst was published")
        assert page.evaluate("window.notReloaded") is True
        assert "HIGH" in alert.locator(".badge").inner_text()
        assert "targets" in alert.locator(".detail").inner_text()
        assert SPAM_URL.split("?")[0] in alert.locator(".sample").inner_text()
        assert f"{spammer}-" in alert.locator(".events").inner_text()
        page.screenshot(path=str(tmp_path / "alert-live.png"), full_page=True)

        alert.locator("a.actor").click()
        page.wait_for_url(f"**/accounts/{spammer}")
        page.locator('#account-alerts li.alert[data-rule="R1"]').wait_for(timeout=30_000)
        ready(page, "account-days-card", "account-latency-card")
        assert page.locator("#account-name").inner_text() == spammer
        page.screenshot(path=str(tmp_path / "account-spammer.png"), full_page=True)

        busiest = api["accounts"][0]["account"]
        found = get_json(f"{base}/api/accounts?q={quote(busiest)}")["accounts"]
        assert busiest in [a["account"] for a in found]
        page.fill("#search-input", busiest)
        page.press("#search-input", "Enter")
        page.wait_for_url(f"**/accounts/{busiest}")
        ready(page, "account-days-card", "account-latency-card", "account-requester-card")
        days = chart(page, "account-days")
        assert len(set(days["labels"])) == len(days["labels"]) > 0  # one point a day
        assert sum(days["data"][1]) == api["accounts"][0]["inbound"]  # inbound per day
        latency = chart(page, "account-latency")["data"][0]
        assert sum(latency) == api["accounts"][0]["answered"]
        page.screenshot(path=str(tmp_path / "account.png"), full_page=True)
        page.close()
    finally:
        assert worker.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert not errors, errors
    print(f"screenshots in {tmp_path}")
