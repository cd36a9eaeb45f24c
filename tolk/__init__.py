"""Tolk: a video interpreter in a consultation within seconds."""
