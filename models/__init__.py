"""Plants and ready-made problems, installed as ``moreauctl.models``.

This folder sits at the top of the repository (``models/``), and ``pyproject.toml`` maps it
to the package name ``moreauctl.models`` (``package-dir``), so it is imported as::

    from moreauctl import models
    prob = models.pendulum_swingup(horizon=100)

and nothing named ``models`` is put on ``sys.path``. Each model file uses only the public API
(``import moreauctl as mc``, then ``mc.Plant`` and ``mc.ControlProblem``): copy one next to
your own code, rename it, edit the equations, and import it as a plain module.
"""
from .cartpole import cartpole, cartpole_swingup
from .pendulum import pendulum, pendulum_swingup, pendulum_swingup_running

__all__ = ["pendulum", "pendulum_swingup", "pendulum_swingup_running", "cartpole",
           "cartpole_swingup", "MODELS"]

#: Problem factories by plant name, for the command line and studies.
MODELS = {"pendulum": pendulum_swingup, "cartpole": cartpole_swingup,
          "pendulum-running": pendulum_swingup_running}
