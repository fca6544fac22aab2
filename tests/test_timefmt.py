"""The humanised time shared by the CLI and the web UI."""

from __future__ import annotations

from datetime import datetime

import pytest
from agent_bus_datasette import render

from agent_bus.cli import _common
from agent_bus.timefmt import ago

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("seconds_before", "text"),
    [
        (0, "just now"),
        (44, "just now"),
        (-30, "just now"),  # a clock slightly ahead
        (45, "1m ago"),
        (59 * 60 + 59, "59m ago"),
        (3600, "1h ago"),
        (86399, "23h ago"),
        (86400, "1d ago"),
        (29 * 86400, "29d ago"),
    ],
)
def test_ago_relative_labels(seconds_before, text) -> None:
    assert ago(NOW - seconds_before, NOW) == text


def test_ago_gives_a_date_from_thirty_days_and_a_dash_for_no_time() -> None:
    ts = NOW - 30 * 86400
    assert ago(ts, NOW) == datetime.fromtimestamp(ts).strftime("%Y-%m-%d")
    assert ago(None, NOW) == "-"


def test_ago_honours_a_now_of_zero() -> None:
    assert ago(-7200.0, 0.0) == "2h ago"


def test_cli_and_web_say_the_same_thing() -> None:
    # One implementation, not two copies that agree today: comparing outputs of the same
    # function would pass whatever it returned.
    assert _common.ago is ago
    assert render.ago is ago
