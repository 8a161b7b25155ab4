"""The run's event stream: one JSON object per line in ``RUN_DIR/events.jsonl``.

The CLI writes it, the explorer's training monitor reads it (also for runs started in a terminal
or on a cluster), and tests assert on it. Every event has ``event`` (its kind), ``time`` (Unix
seconds) and, where it applies, ``epoch`` (0-based) and ``step`` (optimizer steps so far).

Kinds and their fields:

==============  ===============================================================================
``start``       ``name``, ``config`` (resolved), ``epochs``, ``steps_per_epoch``, ``world_size``,
                ``device``, ``resumed_from`` (path or null), ``start_epoch``, ``start_step``. A
                resumed run appends a new ``start`` with ``resumed_from`` set: the steps, epochs
                and validations logged before it past ``start_step`` were redone after it
                (:func:`drop_superseded` removes them; the monitor shows the current history)
``step``        ``loss``, ``loss_intra``, ``loss_cross``, ``lr``, ``samples_per_s``, ``eta_s``,
                ``progress`` (0..1 over the whole run)
``epoch``       ``loss``, ``loss_intra``, ``loss_cross`` (epoch means), ``lr``, ``seconds``
``validation``  ``val_acc`` (linear-SVM accuracy on the held-out split), ``best_acc``, ``seconds``
``checkpoint``  ``path``, ``kind`` ("last", "best" or "epoch")
``stopped``     ``reason`` ("signal" or "max_steps") - the run ended early but cleanly
``end``         ``best_acc``, ``seconds``
``error``       ``message``, ``traceback``
``bad_objects`` ``stage`` ("precheck" or "train"), ``count``, ``examples`` (messages), ``total``,
                ``limit`` - unreadable objects replaced by the next good one
==============  ===============================================================================
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

EVENTS_FILE = "events.jsonl"


def _clean(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _clean(value.item())
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, Path):
        return str(value)
    return value


class EventWriter:
    """Appends events to ``run_dir/events.jsonl``, flushed line by line (readers tail the file)."""

    def __init__(self, run_dir: str | Path, *, enabled: bool = True):
        self.path = Path(run_dir) / EVENTS_FILE
        self.enabled = enabled
        self._fh = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")

    def emit(self, event: str, **fields) -> dict:
        rec = {"event": event, "time": time.time(), **_clean(fields)}
        if self._fh is not None:
            self._fh.write(json.dumps(rec, allow_nan=False) + "\n")
            self._fh.flush()
            try:
                os.fsync(self._fh.fileno())
            except OSError:
                pass
        return rec

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EventReader:
    """Incrementally reads an events file that another process may still be writing.

    ``poll()`` returns the complete new events since the last call; a partially written last line is
    kept for the next call, a corrupt line is skipped (counted in ``bad_lines``).
    """

    def __init__(self, path: str | Path):
        p = Path(path)
        self.path = p / EVENTS_FILE if p.is_dir() else p
        self._offset = 0
        self._partial = b""
        self.bad_lines = 0

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._offset:  # file was replaced: start over
                    self._offset, self._partial = 0, b""
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # incomplete (or empty) tail
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.bad_lines += 1
                continue
            if isinstance(rec, dict) and "event" in rec:
                out.append(rec)
            else:
                self.bad_lines += 1
        return out


def read_events(path: str | Path) -> list[dict]:
    """All complete events of a run folder or events file."""
    return EventReader(path).poll()


def drop_superseded(events: list[dict]) -> list[dict]:
    """The run's current history: the ``step``, ``epoch``, ``validation`` and ``checkpoint`` events
    that a later resume redid (logged before a resumed ``start`` with a ``step`` past its
    ``start_step``) are left out. Other events (starts, stops, errors) are kept as they happened."""
    redo = {"step", "epoch", "validation", "checkpoint"}
    out: list[dict] = []
    for ev in events:
        if ev.get("event") == "start" and ev.get("resumed_from"):
            s0 = int(ev.get("start_step") or 0)
            out = [e for e in out if e.get("event") not in redo or int(e.get("step") or 0) <= s0]
        out.append(ev)
    return out


# ------------------------------------------------------------------------------------------------
# the schema: what every reader may rely on (the fields above marked required), checked by the tests on
# both engines' streams and by the explorer's monitor before it plots an event
_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_OPT_STR = (str, type(None))

#: kind -> {field: accepted types}; every listed field is required, extra fields are allowed
EVENT_SCHEMA: dict[str, dict[str, tuple]] = {
    "start": {"name": (str,), "config": (dict,), "epochs": (int,), "steps_per_epoch": (int,),
              "world_size": (int,), "device": (str,), "resumed_from": _OPT_STR, "start_epoch": (int,)},
    "step": {"epoch": (int,), "step": (int,), "loss": _OPT_NUM, "lr": _NUM, "samples_per_s": _NUM,
             "eta_s": _NUM, "progress": _NUM},
    "epoch": {"epoch": (int,), "step": (int,), "loss": _OPT_NUM, "lr": _NUM, "seconds": _NUM},
    "validation": {"epoch": (int,), "step": (int,), "val_acc": _OPT_NUM, "best_acc": _OPT_NUM},
    "checkpoint": {"path": (str,), "kind": (str,), "epoch": (int,), "step": (int,)},
    "stopped": {"reason": (str,), "step": (int,)},
    "end": {"step": (int,), "best_acc": _OPT_NUM, "seconds": _NUM},
    "error": {"message": (str,)},
    "bad_objects": {"stage": (str,), "count": (int,), "examples": (list,)},
}


def validate_event(ev) -> list[str]:
    """What is wrong with one event (an empty list when it follows :data:`EVENT_SCHEMA`; an unknown
    kind is reported too, so a reader can skip what it does not understand and say so)."""
    if not isinstance(ev, dict):
        return [f"not an object: {type(ev).__name__}"]
    kind = ev.get("event")
    if not isinstance(kind, str):
        return ["no 'event' kind"]
    if not isinstance(ev.get("time"), _NUM) or isinstance(ev.get("time"), bool):
        return [f"{kind}: no numeric 'time'"]
    fields = EVENT_SCHEMA.get(kind)
    if fields is None:
        return [f"unknown event kind {kind!r}"]
    problems = []
    for name, types in fields.items():
        if name not in ev:
            problems.append(f"{kind}: missing {name!r}")
        elif isinstance(ev[name], bool) or not isinstance(ev[name], types):
            problems.append(f"{kind}: {name!r} is {type(ev[name]).__name__}, expected "
                            f"{' or '.join(t.__name__ for t in types)}")
    return problems
