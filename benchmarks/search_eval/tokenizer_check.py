"""Which FTS5 tokenizer keeps identifiers findable, and does the sanitiser survive bad input?

For each tokenizer and each probe (an identifier, a path, a fragment of one), the expected
set is every message whose text contains the probe (case-insensitive substring). The report
gives, per tokenizer, found/expected and false hits (returned messages without the
substring) at limit 50, plus the FTS index size. The second part throws hostile strings at
``sanitize_fts_query`` with every tokenizer and strategy and counts SQLite errors.
"""

from __future__ import annotations

import sqlite3
import sys

from evaluate import STRATEGIES, TOKENIZERS, FtsIndex, load_messages

PROBES = (
    "retry_backoff_ms",
    "ERR_DB_LOCKED",
    "err_db_locked",
    "schema.py",
    "src/store/schema.py",
    "store/schema",
    "backoff",
    "retry_backoff",
    "idx_messages_topic",
    "with_retries()",
    "Retry-After",
    "X-Hub-Signature-256",
    "messages_fts",
    "locked",
    "503",
)

HOSTILE = (
    "AND",
    "OR NOT",
    "NEAR(retry backoff, 2)",
    "retry*",
    "^retry",
    "content_markdown:retry",
    'unbalanced "quote',
    "((( retry",
    "retry )))",
    "🚀🔥 deploy",
    "🚀",
    "the of and to",
    "'; DROP TABLE messages; --",
    "a\x00b",
    "-retry +backoff",
    '""',
    "NOT NOT NOT",
    "{retry backoff}",
    "retry - backoff",
    "x" * 3,
    ("lorem ipsum dolor sit amet " * 400),  # ~10 kB
)


def index_bytes(index: FtsIndex) -> int:
    row = index.db.execute("SELECT sum(length(block)) FROM messages_fts_data").fetchone()
    return int(row[0] or 0)


def main() -> int:
    messages = load_messages()
    texts = {m["id"]: m["content_markdown"].lower() for m in messages}
    indexes = {name: FtsIndex(messages, name) for name in TOKENIZERS}

    header = "| probe | expected | " + " | ".join(TOKENIZERS) + " |"
    print(header)
    print("|---|---|" + "---|" * len(TOKENIZERS))
    totals = {name: [0, 0, 0] for name in TOKENIZERS}  # found, expected, false
    for probe in PROBES:
        needle = probe.lower().removesuffix("()")
        expected = {i for i, t in texts.items() if needle in t}
        cells = []
        for name, index in indexes.items():
            hits = index.search(probe, None, 50, "or")
            found = len(expected & set(hits))
            false = len(set(hits) - expected)
            totals[name][0] += found
            totals[name][1] += len(expected)
            totals[name][2] += false
            cells.append(f"{found}/{len(expected)}" + (f" (+{false} other)" if false else ""))
        print(f"| `{probe}` | {len(expected)} | " + " | ".join(cells) + " |")
    print(
        "| **total** | | " + " | ".join(f"**{f}/{e}** (+{x})" for f, e, x in totals.values()) + " |"
    )
    print("| index bytes | | " + " | ".join(f"{index_bytes(i):,}" for i in indexes.values()) + " |")

    errors = 0
    runs = 0
    for name, index in indexes.items():
        for strategy in STRATEGIES:
            for text in HOSTILE:
                runs += 1
                try:
                    index.search(text, None, 10, strategy)
                except sqlite3.Error as exc:
                    errors += 1
                    print(f"ERROR {name}/{strategy} {text[:40]!r}: {exc}")
    print(f"\nhostile inputs: {runs} searches, {errors} SQLite errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
