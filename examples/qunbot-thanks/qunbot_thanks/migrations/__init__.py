"""Alembic revisions of the thanks plugin: a branch of its own, off qunbot's core revision."""
