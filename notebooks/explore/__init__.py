"""Exploration notebooks (a package only so that its conftest.py has a name of its own next to tests/conftest.py)."""
