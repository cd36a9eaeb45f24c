"""What Chromium itself sees when the socket refuses a frame."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

_SEND_AND_WAIT_FOR_CLOSE = """
async (size) => {
  const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws");
  return await new Promise((resolve) => {
    ws.onmessage = (event) => {
      if (JSON.parse(event.data).type === "hello") ws.send("x".repeat(size));
    };
    ws.onclose = (event) => resolve({ code: event.code, clean: event.wasClean });
  });
}
"""


class TestOversizedFrames:
    @pytest.mark.parametrize("size", [70 * 1024, 8 * 1024 * 1024])
    def test_the_browser_sees_1009_for_a_frame_over_64_kib(self, open_page, size):
        """Chromium reports close code 1009, cleanly, not 1006, also while it is still
        sending a frame of megabytes when the server refuses it."""
        page = open_page("finanzen", "/finance")
        closed = page.evaluate(_SEND_AND_WAIT_FOR_CLOSE, size)
        assert closed == {"code": 1009, "clean": True}
