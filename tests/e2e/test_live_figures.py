"""The live language figures reach only the pages that show them: a counsellor's page in
the background gets none and catches up when it comes to the front again, while one in
front gets every change."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login_api

pytestmark = pytest.mark.browser

INTERPRETER = "tesfay"
LANGUAGE = "ti"
VISIBILITY = """hidden => {
  // As the browser does when the tab goes to the background or comes back.
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => (hidden ? "hidden" : "visible"),
  });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def recording(page: Any, url: str, username: str, path: str) -> tuple[Any, list[dict[str, Any]]]:
    """Log in, open `path` and record the messages its socket receives: (socket, messages)."""
    login_api(page.context, url, username)
    received: list[dict[str, Any]] = []

    def opened(ws: Any) -> None:
        ws.on("framereceived", lambda payload: received.append(json.loads(payload)))

    page.on("websocket", opened)
    with page.expect_websocket() as socket:
        page.goto(path)
    expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    return socket.value, received


def figures_of(message: str | bytes | dict[str, Any]) -> int | None:
    """How many interpreters of the language are available in a `languages.updated`."""
    parsed = json.loads(message) if isinstance(message, str | bytes) else message
    if parsed["type"] != "languages.updated":
        return None
    return next(f["available"] for f in parsed["languages"] if f["tag"] == LANGUAGE)


def answer(watch: bool) -> Callable[[str | bytes], bool]:
    """A predicate for the server's answer to `languages.watch`."""
    return lambda payload: json.loads(payload) == {"type": "languages.watching", "watch": watch}


def test_a_page_in_the_background_gets_no_figures_and_catches_up_in_front(open_page, server):
    """Hidden, a counsellor's page stops watching; a change reaches a colleague's page in
    front but not it, and its list stays as it was; in front again it gets the new figures
    at once and shows them."""
    counsellor = open_page()
    counsellor_ws, received = recording(counsellor, server.url, "berater.infopoint", "/counsellor")
    colleague = open_page()
    colleague_ws, _ = recording(colleague, server.url, "berater.nour", "/counsellor")
    tile = counsellor.locator(f'#languages button[data-tag="{LANGUAGE}"]')
    expect(tile).to_be_visible()

    with counsellor_ws.expect_event("framereceived", answer(False)):
        counsellor.evaluate(VISIBILITY, True)
    hidden_at = len(received)
    shown_before = tile.text_content()

    # The interpreter switches (available <-> away): the language's figures change.
    interpreter = open_page().context
    login_api(interpreter, server.url, INTERPRETER)
    going = interpreter.request.get("/api/interpreters/me").json()["interpreter"]["status"]
    status = "away" if going == "available" else "available"
    before = next(
        f["available"]
        for f in colleague.context.request.get("/api/languages").json()
        if f["tag"] == LANGUAGE
    )
    expected = before - 1 if status == "away" else before + 1
    with colleague_ws.expect_event("framereceived", lambda p: figures_of(p) == expected):
        changed = interpreter.request.put(
            "/api/interpreters/me/status", data={"status": status}, headers={"Origin": server.url}
        )
        assert changed.ok, changed.text()

    expect(tile).to_have_text(shown_before)
    with counsellor_ws.expect_event("framereceived", answer(True)):
        counsellor.evaluate(VISIBILITY, False)
    # Between the two answers only the figures sent on watching again: the new ones.
    meanwhile = [m for m in received[hidden_at:] if m["type"] != "pong"]
    assert [m["type"] for m in meanwhile] == ["languages.updated", "languages.watching"]
    assert figures_of(meanwhile[0]) == expected
    expect(tile).not_to_have_text(shown_before)
