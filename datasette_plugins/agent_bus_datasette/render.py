"""Message bodies to safe HTML, search snippets to highlighted HTML, times to text.

Bodies are untrusted: agents paste anything, including other people's HTML.
Markdown is rendered with raw HTML disabled (it shows as text), links are
checked by markdown-it, images become plain links (no remote fetches, no
tracking pixels), and the result goes through nh3 (ammonia) with a short
allow-list as a second, independent line of defence.
"""

from __future__ import annotations

import functools
import html
import re
from datetime import datetime

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from agent_bus.timefmt import ago as ago

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
    "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "div": {"class"},
    "span": {"class"},
    "pre": {"class"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
MAX_HIGHLIGHT_CHARS = 100_000

_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments for fenced code with a known language; plain escaped text otherwise."""
    name = (lang or "").strip().split()[0] if lang and lang.strip() else ""
    if name and len(code) <= MAX_HIGHLIGHT_CHARS:
        try:
            lexer = get_lexer_by_name(name)
        except ClassNotFound:
            lexer = None
        if lexer is not None:
            body = highlight(code, lexer, _FORMATTER)
            css = f"language-{html.escape(name)}"
            return f'<pre class="highlight"><code class="{css}">{body}</code></pre>'
    return ""  # markdown-it falls back to its own escaped <pre><code>


def _image_as_link(self, tokens, idx, options, env) -> str:  # noqa: ANN001 - markdown-it API
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = "".join(child.content for child in (token.children or [])) or src
    return f'<a href="{html.escape(str(src))}">[image: {html.escape(alt)}]</a>'


def _make_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _make_parser()


def sanitise(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )


@functools.lru_cache(maxsize=8192)
def markdown_html(text: str) -> Markup:
    """Markdown to sanitised HTML (messages never change, so results are cached)."""
    return Markup(sanitise(_MD.render(text)))


_SNIPPET_MARK = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def snippet_html(snippet: str) -> Markup:
    """An FTS snippet (matches wrapped in ``**``) as escaped text with <mark> highlights."""
    parts: list[str] = []
    pos = 0
    for match in _SNIPPET_MARK.finditer(snippet):
        parts.append(html.escape(snippet[pos : match.start()]))
        parts.append(f"<mark>{html.escape(match.group(1))}</mark>")
        pos = match.end()
    parts.append(html.escape(snippet[pos:]))
    return Markup("".join(parts))


def pygments_css() -> str:
    light = HtmlFormatter(style="default").get_style_defs(".ab-body .highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs(".ab-dark .ab-body .highlight")
    return light + "\n" + dark + "\n"


def local_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def initials(name: str) -> str:
    words = [w for w in re.split(r"[\s_\-.]+", name) if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return (words[0][0] + words[1][0]).upper()


def colour(name: str) -> int:
    """A stable colour class (0-11) per sender, so a thread can be scanned by who speaks."""
    return sum(ord(c) * (i + 1) for i, c in enumerate(name)) % 12
