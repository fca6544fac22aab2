"""The floor: a bare `MCPServer` with one tool, nothing of agent-bus.

Cold start and memory of agent-bus are reported as overhead over this process.
Run as a script (``python benchmarks/bare_server.py``) so that it imports nothing
from this repository.
"""

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="bare")


@server.tool(description="Health check.")
def ping() -> dict[str, bool]:
    return {"ok": True}


@server.tool(description="Stand-in for a first call that touches storage.")
def topic_list() -> dict[str, list[str]]:
    return {"topics": []}


if __name__ == "__main__":
    server.run("stdio")
