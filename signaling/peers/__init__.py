"""Headless aiortc peers that speak Tolk's protocol: the shared client (HTTP and socket),
generated media, the call and room participants (perfect negotiation), the simulated
interpreter."""
