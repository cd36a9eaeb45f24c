"""Consultation room set-up in real browsers (Debian's Chromium, fake camera and microphone,
loopback): from opening the invitation link to the guest's first decoded frame of the
counsellor, and from the interpreter's accept to all three decoding each other's video;
in the same run, as the baseline, a two-party call's accept to both decoding.

    python -m bench.room_setup [--runs 5]

It starts its own `tolk serve` (fresh SQLite, demo roster, wrap-up 0 s). Each run is a new
room: the counsellor opens it, a guest (a fresh browser context) opens the link and joins
at once, the counsellor asks for Ukrainian, the interpreter accepts, and the counsellor
ends the room. Results: bench/results/room_setup.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from bench.call_setup import own_server
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tolk.demo import DEMO_PASSWORD

RESULTS = Path(__file__).parent / "results" / "room_setup.md"
TIMEOUT_MS = 60_000
COUNSELLOR = "berater.jobcenter"
INTERPRETER = "olena"

# Every other tile of a page has decoded a frame; the latest of those moments (Date.now()).
ALL_FRAMES = """n => {
  const tiles = [...document.querySelectorAll('#room .tile[data-self="false"]')];
  if (tiles.length < n || tiles.some((t) => !t.dataset.firstFrameAt)) return null;
  return Math.max(...tiles.map((t) => Number(t.dataset.firstFrameAt)));
}"""


async def signed_in(browser: Any, url: str, username: str, path: str) -> Page:
    context = await browser.new_context(base_url=url)
    context.set_default_timeout(TIMEOUT_MS)
    answer = await context.request.post(
        "/api/session",
        data={"username": username, "password": DEMO_PASSWORD},
        headers={"Origin": url},
    )
    assert answer.ok, await answer.text()
    page = await context.new_page()
    await page.goto(path)
    await page.wait_for_selector('#conn[data-state="open"]')
    return page


async def frames_everywhere(page: Page, others: int) -> float:
    handle = await page.wait_for_function(ALL_FRAMES, arg=others, timeout=TIMEOUT_MS)
    return float(await handle.json_value())


async def offer_accepted(interpreter: Page) -> float:
    """Accept the offer on screen; the moment of the click (Date.now() in the page)."""
    await interpreter.wait_for_selector("#offer:not([hidden])", timeout=TIMEOUT_MS)
    return float(
        await interpreter.evaluate(
            "() => { const t = Date.now(); document.querySelector('#accept').click(); return t; }"
        )
    )


async def ask_ukrainian(counsellor: Page) -> None:
    search = counsellor.get_by_role("searchbox")
    await search.fill("Ukr")
    await counsellor.wait_for_selector('#languages button[data-tag="uk"]')
    await search.press("Enter")


async def one_room(browser: Any, url: str, counsellor: Page, interpreter: Page) -> dict[str, float]:
    """One consultation; seconds from the link opened to the guest's first frame, and from
    the interpreter's accept to all three decoding each other."""
    link = counsellor.locator("#invite-link")
    before = await link.input_value()  # the last room's link stays in the field
    await counsellor.click("#room-open")
    await counsellor.wait_for_function(
        "old => document.querySelector('#invite-link').value.includes('/join/')"
        " && document.querySelector('#invite-link').value !== old",
        arg=before,
    )
    path = (await link.input_value()).split(url, 1)[1]
    guest_context = await browser.new_context(base_url=url)
    guest_context.set_default_timeout(TIMEOUT_MS)
    try:
        guest = await guest_context.new_page()
        await guest.goto(path)
        await guest.select_option("#guest-language", "uk")
        await guest.click("#join:not([disabled])")
        # The page's clock starts when the link was opened (navigation start).
        await guest.wait_for_function(ALL_FRAMES, arg=1, timeout=TIMEOUT_MS)
        link_to_frame = float(
            await guest.evaluate(
                "() => Number(document.querySelector('#room .tile[data-self=\"false\"]')"
                ".dataset.firstFrameAt) - performance.timeOrigin"
            )
        )
        await frames_everywhere(counsellor, 1)
        await counsellor.click("#room-interpreter")
        await ask_ukrainian(counsellor)
        accepted = await offer_accepted(interpreter)
        done = [await frames_everywhere(p, 2) for p in (counsellor, guest, interpreter)]
        all_three = max(done) - accepted
        await counsellor.click("#room .hangup")
        await interpreter.wait_for_selector("#room", state="hidden", timeout=TIMEOUT_MS)
        await counsellor.wait_for_selector("#remote:not([hidden])", timeout=TIMEOUT_MS)
    finally:
        await guest_context.close()
    return {
        "link opened -> guest decodes": link_to_frame / 1000,
        "accept -> all three": all_three / 1000,
    }


async def two_party(counsellor: Page, interpreter: Page) -> float:
    """The baseline: a call's accept -> both browsers decode the other's video."""
    await ask_ukrainian(counsellor)
    accepted = await offer_accepted(interpreter)
    ends = []
    for page in (counsellor, interpreter):
        handle = await page.wait_for_function(
            # The view of this call (the last call's figures stay in the hidden view).
            "() => { const c = document.querySelector('#call');"
            " return !c.hidden && Number(c.dataset.framesDecoded) > 0 && Date.now(); }",
            timeout=TIMEOUT_MS,
        )
        ends.append(float(await handle.json_value()))
    await counsellor.get_by_role("button", name="Auflegen").click()
    await interpreter.wait_for_selector("#call", state="hidden", timeout=TIMEOUT_MS)
    return (max(ends) - accepted) / 1000


async def measure(runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    async with own_server() as url, async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        counsellor = await signed_in(browser, url, COUNSELLOR, "/counsellor")
        interpreter = await signed_in(browser, url, INTERPRETER, "/interpreter")
        await interpreter.get_by_label("Verfügbar").check()
        await interpreter.wait_for_selector('#status[data-presence="available"]')
        for run in range(runs + 1):  # the first run warms up and is not counted
            try:
                room = await one_room(browser, url, counsellor, interpreter)
            except Exception:
                said = await counsellor.evaluate(
                    "() => [document.querySelector('#notice').textContent,"
                    " document.querySelector('#status').textContent]"
                )
                print(f"run {run}: the counsellor's page says {said}", flush=True)
                raise
            await interpreter.wait_for_selector('#status[data-presence="available"]')
            call = await two_party(counsellor, interpreter)
            await interpreter.wait_for_selector('#status[data-presence="available"]')
            print(f"run {run}: {room} two-party {call:.3f} s", flush=True)
            if run == 0:
                continue
            for name, value in {**room, "two-party accept -> both (baseline)": call}.items():
                samples.setdefault(name, []).append(value)
        await browser.close()
    return samples


def table(samples: dict[str, list[float]]) -> str:
    rows = ["| path | runs | p50 ms | min ms | max ms |", "|---|---|---|---|---|"]
    for name, values in samples.items():
        ms = [v * 1000 for v in values]
        rows.append(
            f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    samples = asyncio.run(measure(args.runs))
    load_after = os.getloadavg()
    base = statistics.median(samples["two-party accept -> both (baseline)"])
    ratio = statistics.median(samples["accept -> all three"]) / base
    print(table(samples))
    print(f"accept -> all three / two-party baseline (p50): {ratio:.2f}")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
