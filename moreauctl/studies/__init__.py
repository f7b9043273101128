"""Studies: step-size grids and horizon sweeps, parallel and resumable.

>>> from moreauctl import models, studies
>>> prob = models.pendulum_swingup(horizon=50)
>>> g = studies.grid_search(prob, "gd", steps=studies.powers_of_two(-4, 2), iters=20)
>>> g.step                                    # chosen by the best cost reached
>>> sw = studies.horizon_sweep("pendulum", [50, 100], ["gd", "moreau-gd"], iters=50,
...                            out="results/sweep")   # cells cached, CSV/markdown/figures
>>> print(sw.to_markdown())

Modules, in import order (each imports only those above it, so there is no circle):

- :mod:`~moreauctl.studies.metrics`: min-so-far, area under it, normalized gap, criteria;
  :mod:`~moreauctl.studies.executors`: serial, thread, process and Dask executors;
  :mod:`~moreauctl.studies.store`: one atomic JSON file per finished cell;
  :mod:`~moreauctl.studies.fingerprint`: the problem content and code version of a cell;
  :mod:`~moreauctl.studies.cells`: load finished cells, run the others on an executor
  (network studies);
- :mod:`~moreauctl.studies.grid`: :func:`~moreauctl.studies.grid_search` over one problem;
- :mod:`~moreauctl.studies.report`: columns, tables and figures of a sweep;
- :mod:`~moreauctl.studies.sweep`: :func:`~moreauctl.studies.horizon_sweep` (scaling with
  ``T``, resuming);
- :mod:`~moreauctl.studies.training`: :func:`~moreauctl.studies.training_grid`, methods x
  steps on a network task (the paper's grid search for Fig. 4), with the same executors and
  resumable cells.
"""
from .fingerprint import code_fingerprint, problem_fingerprint
from .executors import (EXECUTOR_KINDS, SerialExecutor, dask_executor, make_executor,
                        runs_in_process)
from .grid import GridResult, StepRecord, choose, format_step, grid_search, powers_of_two
from .metrics import CRITERIA, auc_of_costs, first_at_or_below, min_so_far, normalized_gap
from .report import (markdown_table, plot_gap_vs_horizon, plot_min_cost_panels,
                     plot_step_sensitivity, sweep_rows, write_report)
from .store import CellStore, atomic_path, cell_key, write_json_atomic, write_text_atomic
from .sweep import (DEFAULT_METHODS, DEFAULT_STEPS, FAMILY_METHODS, METHOD_PRESETS, SCALINGS,
                    SweepResult, check_record, horizon_sweep, run_cell)
from .training import TrainingStudy, run_training_cell, training_grid

__all__ = ["powers_of_two", "grid_search", "GridResult", "StepRecord", "choose", "CRITERIA",
           "auc_of_costs", "min_so_far", "normalized_gap", "first_at_or_below", "format_step",
           "horizon_sweep", "SweepResult", "METHOD_PRESETS", "DEFAULT_METHODS", "DEFAULT_STEPS",
           "FAMILY_METHODS",
           "SCALINGS", "SerialExecutor", "make_executor", "dask_executor", "runs_in_process",
           "EXECUTOR_KINDS", "run_cell", "CellStore", "cell_key", "write_json_atomic",
           "write_text_atomic", "atomic_path", "sweep_rows", "markdown_table", "write_report",
           "plot_min_cost_panels", "plot_gap_vs_horizon", "plot_step_sensitivity",
           "check_record", "problem_fingerprint", "code_fingerprint",
           "training_grid", "TrainingStudy", "run_training_cell"]
