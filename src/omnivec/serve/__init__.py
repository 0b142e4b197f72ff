"""Serving engine: dynamic batching of concurrent requests, independent of any web framework."""
