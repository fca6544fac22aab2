"""What a person sees: a real headless Chromium (Debian's) against `agent-bus web`.

Set WEB_SCREENSHOTS_DIR=docs/images to refresh the documentation screenshots.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_bus.bus import Bus
from agent_bus.models import OutboxItem
from agent_bus.settings import BusSettings

from conftest import call, spawn

pytestmark = [pytest.mark.browser, pytest.mark.anyio]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

CONVERSATION = [
    (
        "implementer-otter",
        "message",
        None,
        "Kicking off the review for PR #482: splitting `PaymentService` "
        "(`src/payments/service.py`, ~1,400 lines) into three collaborators.\n\n"
        "Plan:\n\n1. `ChargeOrchestrator` — authorize/capture flow, retries, 3DS\n"
        "2. `RefundHandler` — full and partial refunds\n"
        "3. `LedgerWriter` — double-entry postings into `ledger_entries`\n\n"
        "Webhooks and payouts are **out of scope** for this PR.",
    ),
    (
        "reviewer-heron",
        "question",
        1,
        "Before I start: are webhook handlers (`src/payments/webhooks.py`) moving in this PR "
        "or a follow-up? They call `PaymentService._apply_charge_update` directly.",
    ),
    (
        "implementer-otter",
        "answer",
        2,
        "Follow-up. I kept a thin shim so they keep working:\n\n"
        "```python\nclass PaymentService:\n"
        "    def _apply_charge_update(self, event: ChargeEvent) -> None:\n"
        "        # TODO(#490): remove once webhooks call the orchestrator\n"
        "        self._orchestrator.apply_update(event)\n```",
    ),
    (
        "reviewer-heron",
        "review",
        None,
        "Commit 1 looks good. Two notes:\n\n"
        "- `ChargeOrchestrator.capture()` retries on `CardDeclined` — that should be terminal.\n"
        "- `LedgerWriter` opens its own transaction; it must join the caller's.\n\n"
        "| file | status |\n|---|---|\n| `orchestrator.py` | changes requested |\n"
        "| `refunds.py` | approved |",
    ),
    (
        "implementer-otter",
        "status",
        4,
        "Fixed both in `a1b2c3d`: `CardDeclined` is terminal now, and `LedgerWriter.post()` "
        "takes the session. Tests: `pytest tests/payments -q` → 212 passed.",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_realistic(path: Path) -> str:
    bus = Bus(BusSettings(db=path))
    try:
        for name, n in (
            ("deps-upgrade-q3", 45),
            ("release-2.8-checklist", 42),
            ("ci-flaky-test-hunt", 44),
            ("orders-db-migration", 44),
        ):
            topic, _ = bus.topic_create(name)
            for i in range(0, n, 20):
                bus.post(
                    topic.topic_id,
                    "planner-lynx",
                    [
                        OutboxItem(content_markdown=f"Step {j + 1} of `{name}` done.")
                        for j in range(i, min(n, i + 20))
                    ],
                )
            if name == "release-2.8-checklist":
                bus.topic_close(topic.topic_id, reason="released")
        review, _ = bus.topic_create("payments-refactor-review", metadata={"pr": 482})
        ids: list[str] = []
        for sender, mtype, reply, body in CONVERSATION:
            item = OutboxItem(
                content_markdown=body,
                message_type=mtype,
                reply_to=ids[reply - 1] if reply else None,
            )
            ids.append(bus.post(review.topic_id, sender, [item])[0].message.message_id)
        bus.cursor_reset(review.topic_id, "reviewer-heron", 5)
        return review.topic_id
    finally:
        bus.close()


@pytest.fixture
def web(db_path: Path) -> Iterator[tuple[str, str]]:
    if not Path(CHROMIUM).exists():
        # A skipped browser test would hide a gap: `make test` installs Chromium.
        pytest.fail(f"no system Chromium at {CHROMIUM}: run `apt-get install chromium`")
    topic_id = seed_realistic(db_path)
    port = free_port()
    code = (
        "from agent_bus.settings import BusSettings; from agent_bus.web import run_web; "
        f"run_web(BusSettings(db={str(db_path)!r}), port={port}, open_browser=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/-/agent-bus.json", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base, topic_id
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def shots_dir(tmp_path: Path) -> Path:
    target = os.environ.get("WEB_SCREENSHOTS_DIR")
    out = Path(target) if target else tmp_path / "shots"
    out.mkdir(parents=True, exist_ok=True)
    return out


async def test_overview_thread_live_update_and_search_in_a_real_browser(web, db_path, tmp_path):
    from playwright.async_api import async_playwright

    base, topic_id = web
    shots = shots_dir(tmp_path)
    violations: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            await page.goto(base + "/-/agent-bus")
            await page.wait_for_selector("table.ab-topics")
            rows = await page.locator("table.ab-topics tbody tr").count()
            assert rows == 5
            first = await page.locator("table.ab-topics tbody tr").first.inner_text()
            assert "payments-refactor-review" in first and "reviewer-heron" in first
            await page.screenshot(path=str(shots / "web-overview.png"))

            await page.click("text=payments-refactor-review")
            await page.wait_for_selector("#m-5")
            await page.wait_for_function(
                "document.getElementById('ab-live').textContent.startsWith('Live')"
            )
            assert await page.locator("#m-3 pre.highlight span.k").count() > 0
            assert await page.locator("#m-2 .ab-badge").inner_text() == "question"

            async with spawn(db_path) as session:
                await call(session, "topic_join", agent_name="reviewer-heron", topic_id=topic_id)
                await call(
                    session,
                    "sync",
                    topic_id=topic_id,
                    agent_name="reviewer-heron",
                    wait_seconds=0,
                    outbox=[
                        {
                            "content_markdown": "Approved. **Ship it** once CI is green.",
                            "message_type": "approval",
                        }
                    ],
                )
            sent_at = time.monotonic()
            await page.wait_for_selector("#m-6", timeout=5000)
            shown_after = time.monotonic() - sent_at
            assert "Ship it" in await page.locator("#m-6 .ab-body").inner_text()
            assert await page.locator("#ab-stat-count").inner_text() == "6"
            await page.wait_for_timeout(2600)  # let the arrival highlight fade for the picture
            await page.locator("#m-6").scroll_into_view_if_needed()
            await page.screenshot(path=str(shots / "web-thread-live.png"))
            await page.evaluate(
                "window.scrollTo(0, 0); document.getElementById('ab-new-below').hidden = true"
            )
            await page.screenshot(path=str(shots / "web-thread.png"))

            await page.fill(".ab-searchbar input[type=search]", "ledger transaction")
            await page.press(".ab-searchbar input[type=search]", "Enter")
            await page.wait_for_selector(".ab-results mark")
            await page.screenshot(path=str(shots / "web-search.png"))
            assert not violations, violations
        finally:
            await browser.close()
    # A generous bound only to catch a broken live path (it is ~0.1-0.5 s in practice).
    assert shown_after < 5, shown_after
    if not os.environ.get("WEB_SCREENSHOTS_DIR"):
        shutil.rmtree(shots, ignore_errors=True)
