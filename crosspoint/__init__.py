"""CrossPoint: self-supervised cross-modal contrastive learning for 3D point clouds.

The headless library behind CrossPoint Explorer (Afham et al., CVPR 2022, arXiv 2203.00680).
It never imports Qt, so it runs on a GPU cluster as well as on a laptop.
"""

__version__ = "0.1.0"
