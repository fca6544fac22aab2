"""The MCP front door: tools, prompts and text rendering over the bus service."""
