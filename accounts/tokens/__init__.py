"""Service tokens: their format, cached records, usage counting and IP allow-lists."""
