"""Plumbing that imports no package of Tolk's: settings, database, bus, clock, HTTP edge."""
