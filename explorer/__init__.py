"""CrossPoint Explorer: the Qt application on top of the headless :mod:`crosspoint` library."""

import os as _os

# before Open3D, torch or scikit-learn start their OpenMP runtime (see crosspoint/__init__.py)
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
