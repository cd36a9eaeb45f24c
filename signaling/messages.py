"""The client messages' old home, kept while the call rooms move; see `wire.client`."""

from wire.client import CallHangup as CallHangup
from wire.client import CallJoin as CallJoin
from wire.client import CallMedia as CallMedia
from wire.client import PresenceMessage as PresenceMessage
from wire.client import Signal as Signal
