"""Evaluation commands: ``python -m ingest.eval extraction`` (and more to come)."""
