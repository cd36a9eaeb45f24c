"""App keys of the signalling package."""

from aiohttp import web

from signaling.hub import Hub

HUB = web.AppKey("hub", Hub)
