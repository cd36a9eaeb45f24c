"""The signalling server: the /ws hub, message schemas, call rooms and relay, ICE
credentials, and the aiortc peers (simulated interpreter, echo check)."""
