"""The one way the package talks to people: the ``contraclust`` logger and progress bars.

Nothing below the CLI prints. Library code calls :func:`say` (a logger message) and
:func:`progress_bar`; the CLI calls :func:`show_messages` to send the messages to stderr, and a
Python user sees them once logging is configured (``logging.basicConfig(level=logging.INFO)``).
"""
from __future__ import annotations

import logging
import sys

logger = logging.getLogger("contraclust")
logger.addHandler(logging.NullHandler())


def say(message: str) -> None:
    logger.info(message)


class _LinesBesideBars(logging.StreamHandler):
    """Each message on a line of its own: a progress bar being drawn is cleared first and drawn again after
    (tqdm's external write mode), so that no message lands inside a bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")
        if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
            super().emit(record)
            return
        with tqdm.tqdm.external_write_mode(file=self.stream):
            super().emit(record)


def show_messages(stream=None) -> None:
    """Print the package's messages as plain lines on ``stream`` (default stderr); idempotent."""
    if any(getattr(h, "_contraclust", False) for h in logger.handlers):
        return
    handler = _LinesBesideBars(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._contraclust = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _NoBar:
    total: int | None = None

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar whose total can change once a time budget has been planned."""

    def __init__(self, total: int | None, desc: str, unit: str):
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=2.0)

    def set_postfix(self, *args, **kwargs) -> None:
        self._bar.set_postfix(*args, **kwargs)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_total(self, total: int) -> None:
        self._bar.total = total
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def progress_bar(total: int | None, enabled: bool, desc: str, unit: str = "step"):
    return _Bar(total, desc, unit) if enabled else _NoBar()


def progress_iter(items, desc: str, enabled: bool, unit: str = "img", total: int | None = None):
    """Iterate with a transient bar, shown only on a terminal (``total`` for an iterator without a length)."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, leave=False, mininterval=1.0, disable=None, total=total)
