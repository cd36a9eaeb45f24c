"""Service-level figures for the centre's management: waits, answer rates, demand by hour
and interpreters' hours, from requests, offers, calls and presence (never client data)."""
