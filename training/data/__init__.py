"""Data stages: fetch, adapt, ingest, quality checks and splits of the labelled texts."""
