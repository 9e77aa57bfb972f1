"""The sample project's tests, split into CI pipelines with ``@pipeline`` (docs/testing.md)."""
