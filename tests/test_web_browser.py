"""What a person sees: a real headless Chromium (Debian's) against `agent-bus web`.

Set WEB_SCREENSHOTS_DIR=docs/images to refresh the documentation screenshots.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent_bus.bus import Bus
from agent_bus.models import OutboxItem
from agent_bus.settings import BusSettings

from conftest import call, spawn

pytestmark = [pytest.mark.browser, pytest.mark.anyio]


def system_chromium() -> str:
    """The Chromium `make chromium` accepts: $CHROMIUM, Debian's, or `chromium` on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or "/usr/bin/chromium"


CHROMIUM = system_chromium()
AGENT_BUS = str(Path(sys.executable).with_name("agent-bus"))
URL_LINE = re.compile(r"agent-bus web UI on (http://127\.0\.0\.1:\d+)/-/agent-bus")
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


@contextlib.contextmanager
def serving(db_path: Path, tmp_path: Path, *extra: str, ready: str = "/-/agent-bus.json"):
    """`agent-bus web` in its own process; yields its base URL once ``ready`` answers."""
    if not Path(CHROMIUM).exists():
        # A skipped browser test would hide a gap: `make test` installs Chromium.
        pytest.fail(f"no system Chromium at {CHROMIUM}: run `apt-get install chromium`")
    log = tmp_path / "web.log"
    # Port 0: the system picks a free port as the server binds it, and the server names it.
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [AGENT_BUS, "web", "--port", "0", "--no-open", "--db", str(db_path), *extra],
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60  # liveness only: a loaded machine starts slowly
        while not (found := URL_LINE.search(log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        base = found.group(1)
        # The socket listens before the line is printed; this also waits for the app.
        urllib.request.urlopen(base + ready, timeout=60).read()
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def web(db_path: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    topic_id = seed_realistic(db_path)
    with serving(db_path, tmp_path) as base:
        yield base, topic_id


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
            # How fast it shows is a benchmark figure; here only that it shows (liveness).
            await page.wait_for_selector("#m-6", timeout=60_000)
            assert "Ship it" in await page.locator("#m-6 .ab-body").inner_text()
            assert await page.locator("#ab-stat-count").inner_text() == "6"
            if os.environ.get("WEB_SCREENSHOTS_DIR"):
                await page.wait_for_timeout(2600)  # let the arrival highlight fade
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
    if not os.environ.get("WEB_SCREENSHOTS_DIR"):
        shutil.rmtree(shots, ignore_errors=True)


async def test_a_remote_person_signs_in_with_a_token_and_sees_only_its_topic(db_path, tmp_path):
    from playwright.async_api import async_playwright

    from agent_bus.service import access

    seed_realistic(db_path)
    bus = Bus(BusSettings(db=db_path))
    try:
        info, token = access.create(bus, "alice-laptop", topics=["payments-refactor-review"])
        token_id = info.token_id
    finally:
        bus.close()
    login = "/-/agent-bus/-/login"
    with serving(db_path, tmp_path, "--allow-remote", ready=login) as base:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page()
                await page.goto(base + "/-/agent-bus")
                assert urlsplit(page.url).path == login  # sent to sign in, no data shown
                assert "orders-db-migration" not in await page.content()
                await page.fill("#ab-token", token[:-3] + "xyz")
                await page.click("button[type=submit]")
                await page.wait_for_selector("[role=alert]")
                assert "TOKEN_REQUIRED" in await page.locator("[role=alert]").inner_text()
                await page.fill("#ab-token", token)
                await page.click("button[type=submit]")
                await page.wait_for_selector("table.ab-topics")
                names = await page.locator("table.ab-topics tbody tr").all_inner_texts()
                assert len(names) == 1 and "payments-refactor-review" in names[0]
                assert "alice-laptop" in await page.locator(".ab-session").inner_text()
                await page.click("table.ab-topics a:has-text('payments-refactor-review')")
                await page.wait_for_selector("#m-5")
                assert "orders-db-migration" not in await page.content()
                await page.click("#ab-sign-out")
                await page.wait_for_selector("#ab-token")
                await page.goto(base + "/-/agent-bus")
                assert urlsplit(page.url).path == login
                # Signed in again, then the token is revoked: the live thread page's next
                # poll is refused and the page goes back to the login form.
                await page.fill("#ab-token", token)
                await page.click("button[type=submit]")
                await page.click("table.ab-topics a:has-text('payments-refactor-review')")
                await page.wait_for_selector("#m-5")
                await page.wait_for_function(
                    "document.getElementById('ab-live').textContent.startsWith('Live')"
                )
                bus = Bus(BusSettings(db=db_path))
                try:
                    access.revoke(bus, token_id)
                finally:
                    bus.close()
                # Liveness only: the poll already waiting ends within its 20 s.
                await page.wait_for_selector("#ab-token", timeout=60_000)
                assert urlsplit(page.url).path == login
            finally:
                await browser.close()
