"""Organisations, users and roles, login sessions, API tokens and access checks."""
