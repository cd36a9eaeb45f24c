"""Calls: rooms and their lifecycle (join, leave, rejoin, media, hang-up, lost calls)."""
