"""The hook door: `agent-bus hook <client> <event>` and `agent-bus hooks install`.

``run`` is one short process per client event and imports only the standard
library, the store's SQL and the inbox/bindings services (no mcp, typer, rich,
pydantic or embeddings): it runs at every prompt and every stop.
"""
