"""The package version, in a module of its own so that recording it (ingest lineage, report parameters) imports nothing."""

__version__ = "0.1.0"
