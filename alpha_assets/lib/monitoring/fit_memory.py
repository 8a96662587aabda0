"""How much memory a fit adds: the peak resident set size (RSS) while it runs, minus the RSS just before it.

``getrusage``'s ``ru_maxrss`` is the whole process's peak since it started: in a long-lived process that trained
other models, read a lake or imported torch before, it reports that history (5.5 GB for a 2.6 s LightGBM fit),
not the fit. ``tracemalloc`` sees Python's allocations only, not the native libraries' (LightGBM, XGBoost, torch)
that hold the fit's memory. So the RSS is sampled in a thread every few milliseconds during the fit; the peak
increase over the baseline is the fit's own footprint (the same process's other threads, if any, count too).
"""

from __future__ import annotations

import os
import threading

MB = 1024.0 * 1024.0


def rss_bytes() -> int:
    """The process's current resident set size (Linux: /proc/self/statm; elsewhere psutil)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        return int(psutil.Process().memory_info().rss)


class FitMemory:
    """``mem = FitMemory().start(); fit(); mb = mem.stop()`` (or ``with FitMemory() as mem:``, then
    ``mem.peak_mb``): the peak RSS increase during the fit, in MB, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def start(self) -> FitMemory:
        self.baseline = self.peak = rss_bytes()
        self._done.clear()
        self._thread = threading.Thread(target=self._sample, name="fit-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.peak_mb = max(0, self.peak - self.baseline) / MB
        return self.peak_mb

    def __enter__(self) -> FitMemory:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
