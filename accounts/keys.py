"""App keys of the accounts package."""

from aiohttp import web

from accounts.scopes import Operations
from accounts.throttle import LoginThrottle

LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
OPERATIONS = web.AppKey("operations", Operations)
"""Every API operation's area and roles, for token scopes (filled by the app shell)."""
