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
    def test_the_browser_sees_a_clean_1009_for_a_frame_over_64_kib(self, open_page):
        """Chromium reports close code 1009, cleanly, not 1006."""
        page = open_page("finanzen", "/finance")
        closed = page.evaluate(_SEND_AND_WAIT_FOR_CLOSE, 70 * 1024)
        assert closed == {"code": 1009, "clean": True}

    def test_the_browser_sees_1009_while_still_sending_megabytes(self, open_page):
        """Refused while Chromium is still sending a frame of megabytes, the page still
        reads 1009, not 1006. (Whether Chromium calls that close clean depends on how much
        of the frame it had sent: on an idle machine it says unclean, so that is not asked.)"""
        page = open_page("finanzen", "/finance")
        closed = page.evaluate(_SEND_AND_WAIT_FOR_CLOSE, 8 * 1024 * 1024)
        assert closed["code"] == 1009
