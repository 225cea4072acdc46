"""Alembic migration scripts for the core tables (see README.md)."""
