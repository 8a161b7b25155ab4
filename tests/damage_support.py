"""Shared by the seeded damage tests (readers, checkpoints, images): what one load of a damaged file did."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def outcome(load: Callable[[Path], object], path: Path, refusal: type) -> "tuple[str, str | None]":
    """``("loaded", None)``, ``("refused", None)`` when ``load`` raised ``refusal`` with a message that starts
    with the path, else ``("failed", what happened)``: any other exception, or a refusal that does not name
    the file. ``load`` may assert on what it loaded (an AssertionError is a failure too)."""
    try:
        load(path)
    except refusal as exc:
        if not str(exc).startswith(str(path)):
            return "failed", f"{path.name}: the message does not start with the path: {exc}"
        return "refused", None
    except Exception as exc:  # noqa: BLE001 - the point of the damage tests
        return "failed", f"{path.name}: {type(exc).__name__}: {exc}"
    return "loaded", None


class Tally:
    """Outcomes of many damaged loads: ``add`` one, then ``check`` that none failed and that at least
    ``min_refused`` were refused (the damage was not all harmless)."""

    def __init__(self, load: Callable[[Path], object], refusal: type):
        self.load, self.refusal = load, refusal
        self.counts = {"loaded": 0, "refused": 0}
        self.failures: list[str] = []

    def add(self, path: Path, label: str = "") -> None:
        what, why = outcome(self.load, path, self.refusal)
        if what == "failed":
            self.failures.append(f"{label} {why}".strip())
        else:
            self.counts[what] += 1

    def check(self, min_refused: int) -> None:
        assert not self.failures, "\n".join(self.failures)
        assert self.counts["refused"] >= min_refused and self.counts["loaded"] + self.counts["refused"], self.counts
