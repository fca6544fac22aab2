"""Search over the bus: FTS5 now, semantic and hybrid through llm embeddings."""
