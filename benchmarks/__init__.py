"""Performance harness for agent-bus: real server processes driven over MCP stdio.

Run ``python -m benchmarks.run`` (full, ~3 min) or ``--quick`` (~40 s); see docs/benchmarks.md.
"""
