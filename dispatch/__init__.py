"""Requests, matching policies, offers and the queue."""
