"""What the command-line tools (``python -m vrnn.train``, ``python -m vrnn.evaluate``) share.

- :class:`HelpFormatter`: ``--help`` shows defaults, except empty ones.
- :func:`quiet_openmp`: idle OpenMP threads spin by default; on a small machine shared
  with other work that made a training step 10-20x slower (measured on 2 cores). It must
  run before torch is imported, so this module imports nothing heavy.
- :func:`set_threads`: torch's CPU thread count (one share of the cores per process).
- :func:`fail`: one line on stderr, no traceback, and the exit code (2 for bad input).
"""

from __future__ import annotations

import argparse
import os
import sys

from .text import one_line

#: Exit code for bad input: flags, data, checkpoints (argparse uses it too).
EXIT_BAD_INPUT = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones and those the help text already states."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def quiet_openmp(as_program: bool) -> None:
    """Make idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) when this process is a CLI.

    Only when ``as_program`` (the module runs as ``__main__``) and torch is not loaded yet:
    a program that imports the library keeps its own OpenMP settings. An explicit
    ``OMP_WAIT_POLICY`` in the environment always wins.
    """
    if as_program and "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_threads(threads: int | None, *, processes_here: int = 1) -> None:
    """Set torch's CPU threads: ``threads`` when given, else the cores shared by ``processes_here``.

    With neither an explicit count nor several processes on this machine, torch's own
    default is kept.
    """
    if not threads and processes_here <= 1:
        return
    # torch is imported here, not at the top: this module must load before torch (quiet_openmp)
    import torch

    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // processes_here))


def fail(message: object, code: int = EXIT_BAD_INPUT) -> int:
    """Print ``error: <message>`` as one line on stderr and return ``code`` (for ``sys.exit``)."""
    print(f"error: {one_line(message, limit=1000)}", file=sys.stderr)
    return code
