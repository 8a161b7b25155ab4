"""Format readers and writers behind :mod:`crosspoint.io` (private: use ``crosspoint.io``)."""
