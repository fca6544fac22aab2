# ruff: noqa: F811 - the `web` fixture imported from test_web_browser is used as an argument
"""A person at the web workbench, in a real headless Chromium (Debian's), against
`agent-bus web`: replying wakes an agent's waiting `sync`, agents' posts show up live,
delete needs the typed name, keyboard shortcuts and dark mode work.

Set WEB_SCREENSHOTS_DIR=docs/images to refresh the documentation screenshots.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_web_browser import ARGS, CHROMIUM, shots_dir, web  # noqa: F401

from conftest import call, spawn

pytestmark = [pytest.mark.browser, pytest.mark.anyio]


@contextlib.asynccontextmanager
async def browser_page(**context: Any) -> AsyncIterator[tuple[Any, list[str]]]:
    """A page in a fresh Chromium; collects Content-Security-Policy violations."""
    from playwright.async_api import async_playwright

    violations: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context(viewport={"width": 1400, "height": 900}, **context)
            page = await ctx.new_page()
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            yield page, violations
        finally:
            await browser.close()


def thread_url(base: str, topic_id: str) -> str:
    return f"{base}/-/agent-bus/agent_bus/topics/{topic_id}"


async def test_a_person_replies_in_the_page_and_a_waiting_agent_receives_it(web, db_path, tmp_path):
    base, topic_id = web
    shots = shots_dir(tmp_path)
    got: dict[str, Any] = {}
    async with spawn(db_path) as session, browser_page() as (page, violations):
        await call(session, "topic_join", agent_name="reviewer-heron", topic_id=topic_id)
        await page.goto(thread_url(base, topic_id))
        await page.wait_for_function(
            "() => document.getElementById('ab-live').textContent.startsWith('Live')"
        )
        await page.fill("#ab-sender", "alice")
        await page.click("#m-4 .ab-reply-btn")
        await page.wait_for_function(
            "() => document.getElementById('ab-body-input').value"
            ".startsWith('> Commit 1 looks good.')"
        )
        assert await page.input_value("#ab-reply-to") == await page.get_attribute(
            "#m-4", "data-message-id"
        )
        assert await page.is_visible("#ab-replying")
        await page.locator("#ab-body-input").press("End")
        await page.type("#ab-body-input", "Both fixed in `a1b2c3d`; **please re-review**.")
        await page.click("#ab-preview-btn")
        await page.wait_for_selector("#ab-preview-body strong")
        assert await page.inner_text("#ab-preview-body strong") == "please re-review"
        await page.locator("#ab-compose").scroll_into_view_if_needed()
        await page.screenshot(path=str(shots / "web-compose.png"))

        async with anyio.create_task_group() as tg:

            async def wait_in_sync() -> None:
                got["sync"] = await call(
                    session,
                    "sync",
                    topic_id=topic_id,
                    agent_name="reviewer-heron",
                    wait_seconds=60,
                )

            tg.start_soon(wait_in_sync)
            await anyio.sleep(0)  # the waiter is scheduled; posting first would also be seen
            await page.click("#ab-send")
            await page.wait_for_selector("#m-6")  # shown by the page's live poll
        received = got["sync"]["received"]
        assert [m["sender"] for m in received] == ["alice"]
        assert received[0]["reply_to"] == await page.get_attribute("#m-4", "data-message-id")
        assert "please re-review" in received[0]["content_markdown"]
        assert await page.input_value("#ab-body-input") == ""
        assert "↪ reviewer-heron #4" in await page.inner_text("#m-6")
        await page.reload()
        assert await page.input_value("#ab-sender") == "alice"  # remembered
        assert not violations, violations


async def test_without_javascript_the_reply_form_still_posts(web, db_path):
    base, topic_id = web
    async with browser_page(java_script_enabled=False) as (page, _):
        await page.goto(thread_url(base, topic_id))
        await page.click("#m-2 .ab-reply-btn")  # a link: ?reply_to=…#ab-compose
        assert (await page.input_value("#ab-body-input")).startswith("> Before I start")
        await page.fill("#ab-sender", "bob")
        await page.fill("#ab-body-input", "Answered in #3.")
        await page.click("#ab-send")
        await page.wait_for_selector("#m-6")
        assert "Posted #6 as bob." in await page.content()
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT sender, content_markdown FROM messages WHERE topic_id = ? AND seq = 6",
            (topic_id,),
        ).fetchone()
    assert row == ("bob", "Answered in #3.")


async def test_an_agents_post_appears_on_the_overview_and_thread_without_reload(
    web, db_path, tmp_path
):
    base, topic_id = web
    shots = shots_dir(tmp_path)
    async with (
        spawn(db_path) as session,
        browser_page() as (overview, violations),
    ):
        await overview.goto(base + "/-/agent-bus/agent_bus")
        row = overview.locator(f"tr[data-topic-id='{topic_id}']")
        assert await row.locator(".ab-count").inner_text() == "5"
        # the thread in another browser: this one has not looked at the new message
        other = await overview.context.browser.new_context()
        thread = await other.new_page()
        await thread.goto(thread_url(base, topic_id))
        await thread.wait_for_function(
            "() => document.getElementById('ab-live').textContent.startsWith('Live')"
        )
        await call(session, "topic_join", agent_name="reviewer-heron", topic_id=topic_id)
        await call(
            session,
            "sync",
            topic_id=topic_id,
            agent_name="reviewer-heron",
            wait_seconds=0,
            outbox=[{"content_markdown": "Approved.", "message_type": "approval"}],
        )
        await thread.wait_for_selector("#m-6")
        await overview.wait_for_function(
            f"() => document.querySelector(\"tr[data-topic-id='{topic_id}'] .ab-count\")"
            ".textContent === '6'"
        )
        # the overview was open before the post: the topic is marked new since that look
        mark = overview.locator(f"tr[data-topic-id='{topic_id}'] .ab-new-mark")
        await mark.wait_for(state="visible")
        assert await mark.inner_text() == "1 new"
        assert "reviewer-heron" in await row.inner_text()  # presence, refreshed too
        await overview.screenshot(path=str(shots / "web-overview-live.png"))
        assert not violations, violations


async def test_delete_needs_the_typed_name(web, db_path, tmp_path):
    base, topic_id = web
    async with browser_page() as (page, violations):
        await page.goto(thread_url(base, topic_id))
        await page.click(".ab-danger-zone summary")
        button = page.locator("#ab-delete-btn")
        assert await button.is_disabled()
        await page.fill("#ab-confirm-name", "payments-refactor")
        assert await button.is_disabled()
        await page.fill("#ab-confirm-name", "payments-refactor-review")
        assert await button.is_enabled()
        await button.click()
        await page.wait_for_selector("table.ab-topics")
        assert "Deleted payments-refactor-review: 5 messages" in await page.content()
        assert await page.locator(f"tr[data-topic-id='{topic_id}']").count() == 0
        assert not violations, violations
    with sqlite3.connect(db_path) as conn:
        assert conn.execute(
            "SELECT count(*) FROM messages WHERE topic_id = ?", (topic_id,)
        ).fetchone() == (0,)


async def test_keyboard_shortcuts(web, tmp_path):
    base, topic_id = web
    shots = shots_dir(tmp_path)
    async with browser_page() as (page, violations):
        await page.goto(thread_url(base, topic_id))
        await page.keyboard.press("j")
        assert await page.evaluate("document.activeElement.id") == "m-1"
        await page.keyboard.press("j")
        await page.keyboard.press("j")
        await page.keyboard.press("k")
        assert await page.evaluate("document.activeElement.id") == "m-2"
        assert await page.get_attribute("#m-2", "class") == "ab-msg ab-selected"
        await page.keyboard.press("r")
        await page.wait_for_function("() => document.activeElement.id === 'ab-body-input'")
        assert await page.input_value("#ab-reply-to") == await page.get_attribute(
            "#m-2", "data-message-id"
        )
        await page.keyboard.press("Escape")  # leaves the text field
        await page.keyboard.press("/")
        assert await page.evaluate("document.activeElement.id") == "ab-q"
        await page.keyboard.press("Escape")
        await page.keyboard.press("?")
        assert await page.is_visible("#ab-help")
        await page.screenshot(path=str(shots / "web-shortcuts.png"))
        await page.keyboard.press("Escape")
        assert not await page.is_visible("#ab-help")
        # on the topics list j/k walk the rows
        await page.goto(base + "/-/agent-bus/agent_bus")
        await page.keyboard.press("j")
        assert await page.evaluate("document.activeElement.textContent") == (
            "payments-refactor-review"
        )
        assert not violations, violations


async def test_dark_mode_follows_the_system_and_the_toggle(web, tmp_path):
    base, topic_id = web
    shots = shots_dir(tmp_path)
    async with browser_page(color_scheme="dark") as (page, violations):
        await page.goto(thread_url(base, topic_id))
        assert await page.evaluate("document.documentElement.classList.contains('ab-dark')")
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        await page.wait_for_function(
            "() => document.getElementById('ab-live').textContent.startsWith('Live')"
        )
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(shots / "web-thread-dark.png"))
        await page.click("#ab-theme")  # choose light: kept across pages
        assert not await page.evaluate("document.documentElement.classList.contains('ab-dark')")
        await page.goto(base + "/-/agent-bus/agent_bus")
        assert not await page.evaluate("document.documentElement.classList.contains('ab-dark')")
        assert await page.get_attribute("#ab-theme", "aria-pressed") == "false"
        assert not violations, violations


async def test_select_a_range_and_copy_a_permalink(web, tmp_path):
    base, topic_id = web
    async with browser_page(permissions=["clipboard-read", "clipboard-write"]) as (page, v):
        await page.goto(thread_url(base, topic_id))
        await page.check("#m-2 .ab-select-box")
        await page.check("#m-4 .ab-select-box")
        assert await page.input_value("#ab-range-from") == "2"
        assert await page.input_value("#ab-range-to") == "4"
        await page.select_option("#ab-range-format", "md")
        async with page.expect_download() as info:
            await page.click("#ab-range button[type=submit]")
        download = await info.value
        text = Path(await download.path()).read_text(encoding="utf-8")
        assert "### #2 " in text and "### #4 " in text
        assert "### #1 " not in text and "### #5 " not in text
        await page.click("#m-3 .ab-copy-link")
        await page.wait_for_function(
            "() => document.querySelector('#m-3 .ab-copy-link').textContent === 'Copied'"
        )
        link = await page.evaluate("navigator.clipboard.readText()")
        assert link.startswith(base) and "/messages/" in link
        await page.click("#m-3 .ab-copy-md")
        await page.wait_for_function(
            "() => document.querySelector('#m-3 .ab-copy-md').textContent === 'Copied'"
        )
        assert (await page.evaluate("navigator.clipboard.readText()")).startswith("Follow-up.")
        assert not v, v
