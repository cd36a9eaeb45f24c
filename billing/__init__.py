"""Tariffs, billable time, usage records and finance exports."""
