"""Plants and ready-made problems, installed as ``moreauctl.models``.

This folder sits at the top of the repository (``models/``), and ``pyproject.toml`` maps it
to the package name ``moreauctl.models`` (``package-dir``), so it is imported as::

    from moreauctl import models
    prob = models.pendulum_swingup(horizon=100)

and nothing named ``models`` is put on ``sys.path``. Each model file uses only the public API
(``import moreauctl as mc``, then ``mc.Plant`` and ``mc.ControlProblem``): copy one next to
your own code, rename it, edit the equations, and import it as a plain module.
"""
from .acrobot import acrobot, acrobot_geometry, acrobot_swingup
from .car import car, car_geometry, car_parking
from .cartpole import cartpole, cartpole_geometry, cartpole_swingup
from .double_pendulum import double_pendulum, double_pendulum_swingup
from .pendulum import pendulum, pendulum_geometry, pendulum_swingup, pendulum_swingup_running
from .quadrotor import quadrotor, quadrotor_geometry, quadrotor_reach

__all__ = ["pendulum", "pendulum_swingup", "pendulum_swingup_running", "cartpole",
           "cartpole_swingup", "acrobot", "acrobot_swingup", "car", "car_parking",
           "quadrotor", "quadrotor_reach", "double_pendulum", "double_pendulum_swingup",
           "MODELS", "GEOMETRY"]

#: Problem factories by plant name, for the command line and studies; each takes
#: ``(horizon, dt=..., scheme=..., **options)``.
MODELS = {"pendulum": pendulum_swingup, "cartpole": cartpole_swingup,
          "pendulum-running": pendulum_swingup_running, "acrobot": acrobot_swingup,
          "car": car_parking, "quadrotor": quadrotor_reach,
          "double_pendulum": double_pendulum_swingup}

#: Drawing of one state for animations, by plant name (``Plant.name``):
#: ``geometry(x) -> list of polylines (xs, ys)`` in the plant's plane.
GEOMETRY = {"pendulum": pendulum_geometry, "cartpole": cartpole_geometry,
            "acrobot": acrobot_geometry, "car": car_geometry, "quadrotor": quadrotor_geometry}
