"""Where the explorer remembers things between launches (window, colour mode, checkpoint, run folders)."""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QSettings, QStandardPaths


def app_settings() -> QSettings:
    """Settings remembered between launches; ``CROSSPOINT_EXPLORER_CONFIG_DIR`` overrides the location."""
    cfg = os.environ.get("CROSSPOINT_EXPLORER_CONFIG_DIR")
    if cfg:
        return QSettings(str(Path(cfg) / "explorer.ini"), QSettings.Format.IniFormat)
    return QSettings("CrossPointExplorer", "crosspoint-explorer")


def user_data_dir() -> Path:
    """The user's data folder for the explorer (``QStandardPaths.AppDataLocation``: e.g.
    ``~/.local/share/CrossPointExplorer/CrossPoint Explorer`` on Linux); ``CROSSPOINT_EXPLORER_DATA_DIR``
    overrides it (tests)."""
    env = os.environ.get("CROSSPOINT_EXPLORER_DATA_DIR")
    if env:
        return Path(env)
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(loc) if loc else Path.home() / ".local" / "share" / "crosspoint-explorer"
