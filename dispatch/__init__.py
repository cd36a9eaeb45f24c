"""Requests, matching policies, offers and the call lifecycle."""
