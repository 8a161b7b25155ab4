"""Seeded random sessions of user actions on the main window (a monkey test, pytest-qt).

Each session is a reproducible sequence drawn from what a user can do without a file dialog: open
demo objects, good files and damaged ones (several at once too), switch, close and layer objects,
change colour modes, point size, mesh, views, camera and up axis, load checkpoints (the demo's too),
switch dense similarity on click on and off, start the model panel's analyses and cancel them or
close their object while they run, click points and pixels, export, wait. Between actions the event
loop runs for a random few milliseconds, so jobs finish in any order relative to the next action:
this is where results land on the wrong object or a slot meets a state it did not expect.

What is checked after every action, and at the end with every job finished:
- no exception escaped a slot (pytest-qt fails the test on one);
- nothing is lost: every object open before an action is open after it, but the one it closed;
- the Objects list shows the documents in order with the current one selected;
- every result an object holds is of that object (per-point arrays have its point count);
- the colour mode shown is one the current object can draw;
- every damaged file opened is reported as failed, and no error names an internal fault
  (an exception type or a Python message) instead of saying what went wrong;
- no background task (loading, rendering, an analysis) raised a fault of the code (a TypeError,
  IndexError, RuntimeError...: :data:`FAULTS`) rather than the project's errors for the user.

A failure prints the seed and the actions so far: rerun the one seed to reproduce it. The suite
runs two short sessions; a soak runs more, e.g.
``CROSSPOINT_MONKEY_SEEDS=100-129 CROSSPOINT_MONKEY_STEPS=100 pytest tests/test_gui_monkey.py``
(30 sessions of 100 actions: ~25 min on 2 cores).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from tests.gui_support import small_bundles

#: words that give away an internal fault instead of a message for the user
INTERNAL = re.compile(r"Traceback|NoneType|has no attribute|object is not|unhashable|not subscriptable|"
                      r"\b(KeyError|IndexError|AttributeError|TypeError|UnboundLocalError|AssertionError)\b|"
                      r"index \d+ is out of bounds|list index out of range")


def _seeds(text: str) -> list[int]:
    """``"0,1"`` or ``"100-129"`` (inclusive) or a mix: the sessions' seeds."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


SEEDS = _seeds(os.environ.get("CROSSPOINT_MONKEY_SEEDS", "0,1"))
STEPS = int(os.environ.get("CROSSPOINT_MONKEY_STEPS", "40"))


@pytest.fixture(scope="module")
def monkey_files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("monkey")
    rng = np.random.default_rng(0)
    good = []
    for i, n in enumerate((300, 2500)):
        p = d / f"cloud{i}.xyz"
        np.savetxt(p, rng.normal(size=(n, 3)) * (1, 2, 0.5), fmt="%.5f")
        good.append(p)
    lab = d / "labelled.txt"  # x y z label
    pts = rng.uniform(-1, 1, size=(800, 3))
    np.savetxt(lab, np.c_[pts, (pts[:, 1] > 0).astype(int)], fmt="%.5f %.5f %.5f %d")
    good.append(lab)
    bad = {
        "empty.ply": b"",
        "garbage.pcd": bytes(rng.integers(0, 256, 400, dtype=np.uint8)),
        "nan.xyz": b"nan nan nan\nnan 1 2\ninf 0 0\n",
        "cut.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\nproperty float x\n"
                   b"property float y\nproperty float z\nend_header\n" + b"\0" * 100,
    }
    for name, data in bad.items():
        (d / name).write_bytes(data)
    return {
        "good": good,
        "bad": [d / n for n in bad],
        **small_bundles(d),  # "full" and "seg"
        "out": d,
    }


class Monkey:
    """The actions and the invariants; ``log`` is the session so far."""

    def __init__(self, qtbot, win, files, rng: random.Random):
        self.qtbot, self.win, self.files, self.rng = qtbot, win, files, rng
        self.log: list[str] = []
        self.bad_opened: set[str] = set()
        self.exports = 0
        self.faults: list[str] = []  # tracebacks of faults raised by background tasks (_record_faults)
        self.with_map = False  # also the embedding map's actions (MAP_ACTIONS)

    # -- actions ------------------------------------------------------------------------------------
    def open_demo(self):
        self.win.open_demo(self.rng.choice(["chair", "airplane", "table", "mug", "lamp"]))

    def open_good(self):
        self.win.open_files([str(self.rng.choice(self.files["good"]))])

    def open_bad(self):
        p = self.rng.choice(self.files["bad"])
        self.bad_opened.add(p.name)
        self.win.open_files([str(p)])

    def open_several(self):
        paths = self.rng.sample(self.files["good"] + self.files["bad"], 3)
        self.bad_opened.update(p.name for p in paths if p in self.files["bad"])
        self.win.open_files([str(p) for p in paths])

    def select(self):
        n = self.win.file_list.count()
        if n:
            self.win.file_list.setCurrentRow(self.rng.randrange(n))

    def close_current(self):
        if self.win.state.current is not None:
            self.win.state.remove(self.win.state.current_index)

    def toggle_layer(self):
        n = self.win.file_list.count()
        if n:
            item = self.win.file_list.item(self.rng.randrange(n))
            on = item.checkState() == Qt.CheckState.Checked
            item.setCheckState(Qt.CheckState.Unchecked if on else Qt.CheckState.Checked)

    def colour_mode(self):
        c = self.win.color_combo
        if c.count():
            c.setCurrentIndex(self.rng.randrange(c.count()))

    def point_size(self):
        self.win.point_size.setValue(self.rng.randint(1, 8))

    def mesh(self):
        if self.win.show_mesh.isEnabled():
            self.win.show_mesh.toggle()

    def n_views(self):
        self.win.views.n_views.setValue(self.rng.randint(1, 6))

    def thumbnail(self):
        n = self.win.views.thumbs.count()
        if n:
            self.win.views.thumbs.setCurrentRow(self.rng.randrange(n))

    def encoder_view(self):
        self.win.views.encoder_view.toggle()

    def look_from_here(self):
        if self.win.views.look_button.isEnabled():
            self.win.views.look_button.click()

    def view_action(self):
        acts = [self.win.model_frame_action, self.win.bbox_action, self.win.edl_action, self.win.ortho_action,
                self.win.axes_action, *self.win.up_actions.values()]
        self.rng.choice(acts).trigger()

    def standard_view(self):
        self.win.viewer.standard_view(self.rng.choice(["front", "back", "left", "right", "top", "bottom"]))

    def reset_view(self):
        self.win.viewer.reset_view(with_layers=self.rng.random() < 0.5)

    def load_checkpoint(self):
        which = self.rng.choice(["full", "seg", "full", "seg", "demo"])
        self.win.model_panel.load(None if which == "demo" else str(self.files[which]))  # None: the demo's

    def dense(self):
        """Dense similarity on click (the demo checkpoint has dense heads; others say they have none)."""
        self.win.model_panel.dense_links.toggle()

    def _click(self, button):
        if button.isEnabled() and button.isVisible():
            button.click()

    def segment(self):
        mp = self.win.model_panel
        if self.rng.random() < 0.3:
            mp.compare_seg.setChecked(not mp.compare_seg.isChecked())
        mp.k_parts.setValue(self.rng.randint(2, 6))
        self._click(mp.seg_button)

    def heatmap(self):
        mp = self.win.model_panel
        if mp.method.count():
            mp.method.setCurrentIndex(self.rng.randrange(mp.method.count()))
        mp.readouts.setChecked(self.rng.random() < 0.2)
        self._click(mp.heat_button)

    def part_evidence(self):
        self._click(self.win.model_panel.evidence_button)

    def retrieve(self):
        self._click(self.win.model_panel.retrieve_button)

    def orientation(self):
        mp = self.win.model_panel
        self._click(self.rng.choice([mp.orient_button, mp.orient_apply, mp.orient_reset]))

    def cancel(self):
        self._click(self.win.model_panel.cancel_button)

    def pick_point(self):
        doc = self.win.state.current
        if doc is not None:
            self.win._on_point_picked(self.rng.randrange(doc.cloud.n_points))

    def click_pixel(self):
        v = self.win.views
        if v.image_count():
            self.win._on_pixel_clicked(v.current_index, self.rng.uniform(0, 224), self.rng.uniform(0, 224))

    def export(self):
        doc = self.win.state.current
        if doc is not None:
            ext = self.rng.choice([".ply", ".npz", ".pcd"])
            path = self.files["out"] / f"export{self.exports}{ext}"
            self.exports += 1
            assert self.win.export_document(doc, str(path)), self.win.action_errors[-1:]
            assert path.stat().st_size > 0

    # -- the embedding map (MapMonkey) ------------------------------------------------------------------
    def map_embed(self):
        ep = self.win.embedding_panel
        if self.rng.random() < 0.4:
            ep.compare.setChecked(not ep.compare.isChecked())
        ep.run()

    def _map_point(self):
        ep = self.win.embedding_panel
        lo, hi = ep.coords.min(axis=0), ep.coords.max(axis=0)
        return lo + (hi - lo) * np.array([self.rng.uniform(-0.1, 1.1), self.rng.uniform(-0.1, 1.1)])

    def map_select(self):
        ep = self.win.embedding_panel
        if ep.coords is not None:
            ep._on_polygon(np.array([self._map_point() for _ in range(self.rng.randint(3, 9))]))

    def map_open(self):
        ep = self.win.embedding_panel
        if ep.embedding is not None:
            if self.rng.random() < 0.5 and ep.coords is not None:  # a click somewhere on the map
                from PyQt6.QtCore import QPointF

                ep.set_mode("pan")
                ep._on_view_clicked("main", QPointF(*map(float, self._map_point())))
            else:
                ep.open_index(self.rng.randrange(len(ep.embedding)))

    def map_hover(self):
        ep = self.win.embedding_panel
        if ep.coords is not None:
            from PyQt6.QtCore import QPointF

            ep._hover("main", ep.vb.mapViewToScene(QPointF(*map(float, self._map_point()))))

    def map_clear(self):
        self.win.embedding_panel.set_selection([])

    def map_cancel(self):
        self.win.embedding_panel.cancel()

    MAP_ACTIONS = {"map_embed": 2, "map_select": 3, "map_open": 3, "map_hover": 2, "map_clear": 1, "map_cancel": 1}

    def idle(self):
        """The user waits until every job is done (so analyses land, and the next action meets them)."""
        self.wait_idle()

    ACTIONS = {  # name: relative weight
        "open_demo": 3, "open_good": 2, "open_bad": 2, "open_several": 1, "select": 3, "close_current": 2,
        "toggle_layer": 1, "colour_mode": 3, "point_size": 1, "mesh": 1, "n_views": 1, "thumbnail": 2,
        "encoder_view": 1, "look_from_here": 1, "view_action": 2, "standard_view": 1, "reset_view": 1,
        "load_checkpoint": 1, "segment": 3, "heatmap": 3, "part_evidence": 1, "retrieve": 1,
        "orientation": 1, "cancel": 1, "pick_point": 2, "click_pixel": 2, "export": 1, "idle": 3, "dense": 1,
    }

    def step(self):
        actions = {**self.ACTIONS, **(self.MAP_ACTIONS if self.with_map else {})}
        names = list(actions)
        name = self.rng.choices(names, weights=[actions[n] for n in names])[0]
        self.log.append(name)
        before = [d.source for d in self.win.state.documents]
        closing = self.win.state.current.source if name == "close_current" and self.win.state.current else None
        getattr(self, name)()
        self.qtbot.wait(self.rng.choice([0, 0, 5, 30, 150]))
        # nothing is lost: every object open before is still open, but the one closed
        after = [d.source for d in self.win.state.documents]
        kept = list(before)
        if closing is not None:
            kept.remove(closing)
        assert set(kept) <= set(after), (name, sorted(set(kept) - set(after)))

    # -- invariants ---------------------------------------------------------------------------------
    def check(self):
        win, state = self.win, self.win.state
        titles = [win.file_list.item(i).text() for i in range(win.file_list.count())]
        assert titles == [d.title for d in state.documents]
        assert win.file_list.currentRow() == state.current_index
        assert (state.current is None) == (state.current_index < 0)
        for doc in state.documents:
            n = doc.cloud.n_points
            for what, arr in (("prediction", doc.prediction()), ("heatmap", doc.heatmap()),
                              ("errors", doc.errors()), ("uncertainty", doc.uncertainty())):
                assert arr is None or len(arr) == n, (doc.title, what, None if arr is None else len(arr), n)
        doc = state.current
        if doc is not None:
            assert doc.color_mode in state.available_modes(doc), (doc.color_mode, state.available_modes(doc))
        ep = win.embedding_panel
        if ep.embedding is not None:
            n = len(ep.embedding)
            assert ep.coords is not None and ep.coords.shape == (n, 2)
            assert ep.base_coords is None or ep.base_coords.shape == (n, 2)
            sel = np.asarray(ep.selection, np.int64)
            assert ((sel >= 0) & (sel < n)).all() and ep.sel_list.count() == min(len(sel), 2000)
        for what, message in list(win.action_errors) + list(win.load_errors):
            assert not INTERNAL.search(message), (what, message)
        assert not self.faults, self.faults[0]

    def run(self, steps: int, seed: int) -> None:
        """``steps`` actions, each checked, then every job finished and checked again; a failure
        says the seed and the actions that led to it."""
        try:
            for _ in range(steps):
                self.step()
                self.check()
            self.wait_idle()
            self.qtbot.wait(50)
            self.check()
        except BaseException as exc:
            raise AssertionError(f"seed {seed}, after {self.log}: {exc!r}") from exc

    def wait_idle(self):
        win = self.win
        self.qtbot.waitUntil(lambda: not win.loading and not win.model_panel.busy and not win.views.rendering
                             and not win.embedding_panel.busy, timeout=180_000)


#: exceptions that are faults of the code when background work raises them: the project's errors for
#: the user are ValueErrors (ReadError, CheckpointError, AnalysisError, ...), OSErrors or Cancelled
FAULTS = (TypeError, AttributeError, KeyError, IndexError, NameError, AssertionError, ZeroDivisionError,
          RuntimeError)


def _record_faults(monkeypatch) -> list[str]:
    """Every background task (file loading, rendering, analyses: all go through superqt's
    ``create_worker``) records the traceback of a fault it raises; the task fails as before."""
    import inspect
    import traceback

    import explorer.workers as W

    faults: list[str] = []
    real = W.create_worker

    def create_worker(func, *args, **kwargs):
        if inspect.isgeneratorfunction(func):
            return real(func, *args, **kwargs)

        def work(*a, **k):
            try:
                return func(*a, **k)
            except FAULTS:
                faults.append(traceback.format_exc())
                raise

        return real(work, *args, **kwargs)

    monkeypatch.setattr(W, "create_worker", create_worker)
    return faults


def _small_reference(real):
    """The orientation check's references: six demo objects instead of the whole demo, which the
    first check generates (~75 s; that path has its own test in tests/test_orientation.py)."""

    def reference_features(session, reference=None, **kw):
        if reference is None:
            from crosspoint.analysis import embed_clouds
            from crosspoint.data.demo import SHIPPED_PRESET, demo_object

            clouds = [demo_object(c, seed=0, preset=SHIPPED_PRESET) for c in ("chair", "table", "lamp", "mug",
                                                                              "airplane", "bottle")]
            reference = embed_clouds(session, [c.in_model_frame() for c in clouds], n_points=kw.get("n_points", 1024))
        return real(session, reference, **kw)

    return reference_features


@pytest.mark.parametrize("seed", SEEDS)
def test_a_random_user_session_keeps_the_window_consistent(qtbot, window, monkey_files, seed, monkeypatch):
    from crosspoint.analysis import orientation

    monkeypatch.setattr(orientation, "reference_features", _small_reference(orientation.reference_features))
    monkey = Monkey(qtbot, window, monkey_files, random.Random(seed))
    monkey.faults = _record_faults(monkeypatch)
    monkey.load_checkpoint()
    monkey.wait_idle()
    monkey.run(STEPS, seed)
    # every damaged file opened is named in the banner, and did not become a document
    failed = {Path(source).name for source, _ in window.load_errors}
    assert monkey.bad_opened <= failed, (monkey.bad_opened, window.load_errors)
    assert not any(Path(d.source).name in monkey.bad_opened for d in window.state.documents)
    # the window still works: one more analysis on a fresh object lands on it
    window.open_demo("chair")
    monkey.wait_idle()
    doc = window.state.current
    assert doc is not None and doc.title.startswith("demo: chair")
    mp = window.model_panel
    mp.load(str(monkey_files["seg"]))
    monkey.wait_idle()
    assert mp.seg_button.isEnabled()
    mp.seg_button.click()
    qtbot.waitUntil(lambda: "segmentation" in doc.results and not mp.busy, timeout=120_000)
    assert len(doc.prediction()) == doc.cloud.n_points
    monkey.check()


#: the sessions with the embedding map (each embeds a folder in a child process: ~10 s a map)
MAP_SEEDS = _seeds(os.environ.get("CROSSPOINT_MONKEY_MAP_SEEDS", "0"))
MAP_STEPS = int(os.environ.get("CROSSPOINT_MONKEY_MAP_STEPS", "20"))


@pytest.mark.parametrize("seed", MAP_SEEDS)
def test_a_random_user_session_with_the_embedding_map(qtbot, window, monkey_files, seed, monkeypatch, shared_data,
                                                      tmp_path):
    """The same, with the embedding map of a folder of ModelNet meshes: embedded (beside random weights
    or not), cancelled, selected with random polygons, hovered, its objects opened by click or from the
    list, while the main window's actions go on (closing what the map opened, another checkpoint)."""
    import shutil

    from crosspoint.analysis import orientation

    monkeypatch.setattr(orientation, "reference_features", _small_reference(orientation.reference_features))
    root = tmp_path / "objects"
    for f in sorted((shared_data / "modelnet40_off").glob("*.off")):
        (root / f.stem.split("_")[0]).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / f.stem.split("_")[0] / f.name)
    monkey = Monkey(qtbot, window, monkey_files, random.Random(1000 + seed))
    monkey.faults = _record_faults(monkeypatch)
    monkey.with_map = True
    monkey.load_checkpoint()
    monkey.wait_idle()
    ep = window.embedding_panel
    ep.set_source_folder(str(root))
    monkey.map_embed()
    monkey.wait_idle()
    assert ep.embedding is not None, window.action_errors
    monkey.run(MAP_STEPS, seed)
    # the map still works: select everything, open the first object of the selection
    if ep.embedding is None or ep.busy:
        monkey.map_embed()
        monkey.wait_idle()
    lo, hi = ep.coords.min(axis=0) - 1, ep.coords.max(axis=0) + 1
    ep._on_polygon(np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]]))
    assert len(ep.selection) == len(ep.embedding) == len(list(root.rglob("*.off")))
    ep.open_index(int(ep.selection[0]))
    monkey.wait_idle()
    assert window.state.current is not None and Path(window.state.current.source) == Path(ep.embedding.refs[0])
    monkey.check()
