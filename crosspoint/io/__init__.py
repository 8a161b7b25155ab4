"""Reading and writing point clouds and meshes (see :mod:`crosspoint.io.reading`)."""

from .reading import *  # noqa: F401,F403
from .reading import __all__  # noqa: F401
