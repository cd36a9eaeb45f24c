"""Alembic environment and schema versions of Tolk's database."""
