"""Generated media for headless peers: a test-pattern video showing a label (the language)
and a running clock, and a beeping tone. Pure PyAV frames: no numpy, no PIL.

The pattern's colour bars and label are drawn once (`TestPattern`); each call gets a cheap
track that copies the prepared planes and stamps the clock on them, so a new call does not
pay the ~100 ms that drawing a frame from scratch in Python costs.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import struct
import time
from datetime import UTC, datetime

import av
from aiortc import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from infra.tasks import Tasks

# A 5x7 bitmap font for the characters a label and a clock need.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11100", "10010", "10001", "10001", "10001", "10010", "11100"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "10001", "01010", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    " ": ("00000",) * 7,
}
_UNKNOWN = ("11111", "10001", "10001", "10001", "10001", "10001", "11111")

# Luma/chroma (BT.601) of the classic 75 % colour bars: white, yellow, cyan, green,
# magenta, red, blue.
_BARS = (
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
)
_BLACK = 16
_WHITE = 235


def _draw_text(plane: bytearray, width: int, text: str, x: int, y: int, scale: int) -> None:
    """Paint `text` in white on a luma plane, each font pixel a `scale` x `scale` block."""
    for index, char in enumerate(text.upper()):
        glyph = _GLYPHS.get(char, _UNKNOWN)
        left = x + index * 6 * scale
        for row, bits in enumerate(glyph):
            for col, bit in enumerate(bits):
                if bit != "1":
                    continue
                px = left + col * scale
                for dy in range(scale):
                    start = (y + row * scale + dy) * width + px
                    plane[start : start + scale] = bytes([_WHITE]) * scale


def _fill(plane: bytearray, width: int, x: int, y: int, w: int, h: int, value: int) -> None:
    row = bytes([value]) * w
    for yy in range(y, y + h):
        plane[yy * width + x : yy * width + x + w] = row


class TestPattern:
    """Colour bars with a label, drawn once; `frame()` stamps the clock on a copy."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, label: str, width: int = 640, height: int = 480) -> None:
        if width % 16 or height % 16:
            raise ValueError("width and height must be multiples of 16")
        self.label = label
        self.width = width
        self.height = height
        cw, ch = width // 2, height // 2
        y = bytearray(width * height)
        u = bytearray(cw * ch)
        v = bytearray(cw * ch)
        bar_w = width // len(_BARS)
        for i, (luma, cb, cr) in enumerate(_BARS):
            w = bar_w if i < len(_BARS) - 1 else width - bar_w * i
            _fill(y, width, i * bar_w, 0, w, height, luma)
            _fill(u, cw, i * bar_w // 2, 0, (w + 1) // 2, ch, cb)
            _fill(v, cw, i * bar_w // 2, 0, (w + 1) // 2, ch, cr)
        # Black bands behind the label (top) and the clock (bottom), neutral chroma.
        self._scale = max(2, height // 60)
        band = 7 * self._scale + 2 * self._scale
        self._clock_y = height - band
        for top in (0, self._clock_y):
            _fill(y, width, 0, top, width, band, _BLACK)
            _fill(u, cw, 0, top // 2, cw, band // 2, 128)
            _fill(v, cw, 0, top // 2, cw, band // 2, 128)
        _draw_text(y, width, label[:16], self._scale, self._scale, self._scale)
        self._band = band
        self._y = bytes(y)
        self._u = bytes(u)
        self._v = bytes(v)
        self._stamped: tuple[str, bytes] | None = None

    def luma_for(self, clock_text: str) -> bytes:
        """The luma plane with `clock_text` in the bottom band (cached per text)."""
        if self._stamped is not None and self._stamped[0] == clock_text:
            return self._stamped[1]
        y = bytearray(self._y)
        _draw_text(y, self.width, clock_text, self._scale, self._clock_y + self._scale, self._scale)
        self._stamped = (clock_text, bytes(y))
        return self._stamped[1]

    def frame(self, now: datetime | None = None, tick: int = 0) -> av.VideoFrame:
        """A yuv420p frame showing the label, the UTC clock and a moving marker."""
        now = now or datetime.now(UTC)
        y = bytearray(self.luma_for(now.strftime("%H:%M:%S") + f".{now.microsecond // 100000}"))
        # A small block that moves every frame: proof to the eye that frames flow.
        size = self._band // 2
        x = (tick * 8) % max(1, self.width - size)
        _fill(y, self.width, x, self._band + self._scale, size, size, _WHITE)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        widths = (self.width, self.width // 2, self.width // 2)
        for plane, data, width in zip(
            frame.planes, (bytes(y), self._u, self._v), widths, strict=True
        ):
            _copy_into(plane, data, width)
        return frame


def _copy_into(plane: av.video.plane.VideoPlane, data: bytes, width: int) -> None:
    """Copy tightly packed rows into a plane whose rows may be padded (line_size)."""
    if plane.line_size == width:
        plane.update(data)
        return
    rows = len(data) // width
    padded = bytearray(plane.line_size * rows)
    for r in range(rows):
        padded[r * plane.line_size : r * plane.line_size + width] = data[
            r * width : (r + 1) * width
        ]
    plane.update(bytes(padded))


class PatternVideoTrack(VideoStreamTrack):
    """A video track that plays a `TestPattern` at a fixed frame rate."""

    def __init__(self, pattern: TestPattern) -> None:
        super().__init__()
        self._pattern = pattern
        self._tick = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = self._pattern.frame(tick=self._tick)
        self._tick += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A mono 48 kHz track: a short beep every second, silence in between."""

    SAMPLE_RATE = 48000
    SAMPLES = 960  # 20 ms, one Opus frame

    def __init__(self, frequency_hz: float = 600.0, volume: float = 0.2) -> None:
        super().__init__()
        amplitude = int(32767 * volume)
        # Whole cycles per 20 ms frame, so consecutive frames join without a click.
        cycles = max(1, round(frequency_hz * self.SAMPLES / self.SAMPLE_RATE))
        self._tone = b"".join(
            struct.pack("<h", int(amplitude * math.sin(2 * math.pi * cycles * i / self.SAMPLES)))
            for i in range(self.SAMPLES)
        )
        self._silence = bytes(2 * self.SAMPLES)
        self._began: float | None = None
        self._index = 0

    async def recv(self) -> av.AudioFrame:
        if self._began is None:
            self._began = time.monotonic()
        else:
            wait = self._began + self._index * self.SAMPLES / self.SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frames_per_second = self.SAMPLE_RATE // self.SAMPLES
        beeping = self._index % frames_per_second < frames_per_second // 5
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(self._tone if beeping else self._silence)
        frame.sample_rate = self.SAMPLE_RATE
        frame.pts = self._index * self.SAMPLES
        frame.time_base = fractions.Fraction(1, self.SAMPLE_RATE)
        self._index += 1
        return frame


class FrameSink:
    """Reads a remote track to the end, counting decoded frames (the proof media arrives)."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.first_frame_at: dict[str, float] = {}
        """time.perf_counter() of the first decoded frame, by kind."""
        self.last_video: av.VideoFrame | None = None
        self._events = {"audio": asyncio.Event(), "video": asyncio.Event()}
        self._tasks = Tasks()

    def add(self, track: MediaStreamTrack) -> None:
        """Start reading a track."""
        self._tasks.spawn(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        kind = track.kind
        try:
            while True:
                frame = await track.recv()
                self.frames[kind] += 1
                if isinstance(frame, av.VideoFrame):
                    self.last_video = frame
                if kind not in self.first_frame_at:
                    self.first_frame_at[kind] = time.perf_counter()
                self._events[kind].set()
        except (MediaStreamError, asyncio.CancelledError):
            return

    async def wait_for_frames(
        self, kind: str = "video", count: int = 1, timeout_s: float = 10.0
    ) -> None:
        """Wait until `count` frames of `kind` arrived; TimeoutError after timeout_s."""
        async with asyncio.timeout(timeout_s):
            while self.frames[kind] < count:
                self._events[kind].clear()
                await self._events[kind].wait()

    async def close(self) -> None:
        """Stop reading."""
        await self._tasks.cancel()
