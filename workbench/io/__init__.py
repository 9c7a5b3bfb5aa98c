"""Hop 1, ingest: raw telemetry files into the canonical tables (accounting, dedupe, quarantine, lineage), and prices."""
