"""Progress keep-alives for a waiting sync, so clients that reset their timeout on progress keep it.

Only when the client sent a ``progressToken``: then, every
``sync_progress_seconds`` of waiting, one ``notifications/progress`` (elapsed
seconds of ``wait_seconds``). No extra task and no database work: the
keep-alive is the timeout of the await on the sync itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def progress_token(ctx: Any) -> Any:
    """The request's progress token, or None when the client asked for no progress."""
    try:
        meta = ctx.request_context.meta
    except (LookupError, ValueError, AttributeError):
        return None
    if not meta:
        return None
    return meta.get("progress_token", meta.get("progressToken"))


async def with_progress(
    ctx: Any, every: float, total: float, message: str, work: Coroutine[Any, Any, T]
) -> T:
    """Await ``work``, reporting progress every ``every`` seconds if the client asked for it."""
    if progress_token(ctx) is None or total <= every:
        return await work
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            elapsed = loop.time() - started
            with contextlib.suppress(Exception):  # a closed stream ends the call anyway
                await ctx.report_progress(
                    round(elapsed, 1), total, f"{message} ({elapsed:.0f} s of {total:g} s)"
                )
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
