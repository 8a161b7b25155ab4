"""CrossPoint Explorer: the Qt application on top of the headless :mod:`crosspoint` library."""
