"""Subcommands of the ``crosspoint`` CLI, discovered by :mod:`crosspoint.cli`."""
