"""App keys of the accounts package."""

from aiohttp import web

from accounts.throttle import LoginThrottle

LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
