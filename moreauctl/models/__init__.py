"""Plants and ready-made problems.

Import as ``from moreauctl import models`` (the package's plants live inside it, so there is
one import path and nothing to put on ``sys.path``).
"""
from .cartpole import cartpole, cartpole_swingup
from .pendulum import pendulum, pendulum_swingup

__all__ = ["pendulum", "pendulum_swingup", "cartpole", "cartpole_swingup", "MODELS"]

#: Problem factories by plant name, for the command line and studies.
MODELS = {"pendulum": pendulum_swingup, "cartpole": cartpole_swingup}
