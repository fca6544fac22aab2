"""The service layer: the rules of the bus, as small modules over a `Database` handle.

Every door (MCP, CLI, web, hooks) calls these functions, or the `Bus` facade that
bundles them with one handle and one `BusSettings`; none of them holds SQL (that is
`agent_bus.store`) or renders anything.
"""
