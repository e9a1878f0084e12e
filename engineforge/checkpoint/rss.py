"""Peak resident memory of this process over a block, sampled by a background thread."""

from __future__ import annotations

import threading


class PeakRss:
    """`with PeakRss() as rss: ...` then `rss.peak` (bytes), or None without psutil."""

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakRss":
        try:
            import psutil
        except ImportError:
            return self
        process = psutil.Process()
        self.peak = process.memory_info().rss

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                self.peak = max(self.peak, process.memory_info().rss)

        self._thread = threading.Thread(target=sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
