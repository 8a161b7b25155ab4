"""CrossPoint: self-supervised cross-modal contrastive learning for 3D point clouds.

The headless library behind CrossPoint Explorer (Afham et al., CVPR 2022, arXiv 2203.00680).
It never imports Qt, so it runs on a GPU cluster as well as on a laptop.
"""

import os as _os

# OpenMP threads that finish first spin ("active" waiting) by default; when another process holds one
# of a machine's few cores, the spinning threads steal it from the one still working, and torch's and
# scikit-learn's OpenMP code becomes several times slower (measured on 2 shared cores: embedding 9 vs
# 24-27 objects/s, k-means part discovery 2.9 vs 0.34 s; no loss on a quiet machine; docs/RESULTS.md
# "Scale"). Passive waiting, unless the user chose otherwise; it must be set before the OpenMP runtime
# starts, so as early as the package is imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
