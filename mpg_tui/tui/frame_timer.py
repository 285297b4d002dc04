"""The screen's frame timer: a frame as soon as the screen needs one, at most one per frame period.

Textual draws a screen from a repeating timer that the screen pauses after each frame and
resumes when a widget needs drawing again. After a pause the timer waits for the next
frame period on a fixed grid, and its catch-up step skips one period too many: the frame
after a resume came 17 to 33 ms after the previous one, even when the screen had been
ready long before. A keypress draws twice (the cursor's row, then the panes that follow
the selection), so every press waited for that second frame.

This timer draws as soon as it is resumed, once a frame period has passed since the end
of the last frame, after a few passes of the event loop: the press's own messages (the
selection reaching the screen, the panes following it) are handled by then, and the
press costs one frame instead of two. Counted from the end, not the start: under load a frame takes 20 to
100 ms, and a limit counted from its start let the next frame follow at once, leaving
keypresses and batches of events no time between frames (the loaded press-to-handled
p99 rose from ~80-120 to ~180 ms in bench/cockpit.py).
"""

from __future__ import annotations

import asyncio

from textual import _time
from textual.timer import EventTargetGone, Timer

SETTLE_PASSES = 6
"""Passes of the event loop a frame that is not held back by the limit waits before it is drawn."""


class FrameTimer(Timer):
    async def _run(self) -> None:
        last = float("-inf")
        while True:
            await self._active.wait()
            wait = last + self._interval - _time.get_time()
            if wait > 0:
                await asyncio.sleep(wait)
                await self._active.wait()
            else:
                # Resumed by the first repaint of a keypress (the cursor's row): let the
                # messages it set going (the selection, bubbling up to the screen, and the
                # panes' updates) reach their handlers, so one frame shows them all.
                for _ in range(SETTLE_PASSES):
                    await asyncio.sleep(0)
                await self._active.wait()  # still wanted: paused meanwhile, it waits as above
            try:
                await self._tick(next_timer=_time.get_time(), count=0)
            except EventTargetGone:
                break
            last = _time.get_time()
