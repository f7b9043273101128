"""Studies: step-size grids and horizon sweeps, parallel and resumable.

>>> from moreauctl import models, studies
>>> prob = models.pendulum_swingup(horizon=50)
>>> g = studies.grid_search(prob, "gd", steps=studies.powers_of_two(-4, 2), iters=20)
>>> g.step                                    # chosen by the best cost reached
>>> sw = studies.horizon_sweep("pendulum", [50, 100], ["gd", "moreau-gd"], iters=50,
...                            out="results/sweep")   # cells cached, CSV/markdown/figures
>>> print(sw.to_markdown())

See :mod:`moreauctl.studies.grid` (criteria), :mod:`moreauctl.studies.sweep` (scaling with
``T``, executors, resuming), :mod:`moreauctl.studies.store` (atomic cell files) and
:mod:`moreauctl.studies.report` (columns and figures).
"""
from .grid import CRITERIA, GridResult, StepRecord, auc_of_costs, format_step, grid_search, powers_of_two
from .report import markdown_table, plot_gap_vs_horizon, plot_min_cost_panels, plot_step_sensitivity, sweep_rows, write_report
from .store import CellStore, cell_key, write_json_atomic
from .sweep import (DEFAULT_METHODS, DEFAULT_STEPS, METHOD_PRESETS, SCALINGS, SerialExecutor, SweepResult,
                    horizon_sweep, make_executor, normalized_gap, run_cell)

__all__ = ["powers_of_two", "grid_search", "GridResult", "StepRecord", "CRITERIA", "auc_of_costs",
           "format_step", "horizon_sweep", "SweepResult", "METHOD_PRESETS", "DEFAULT_METHODS",
           "DEFAULT_STEPS", "SCALINGS", "SerialExecutor", "make_executor", "normalized_gap",
           "run_cell", "CellStore", "cell_key", "write_json_atomic", "sweep_rows",
           "markdown_table", "write_report", "plot_min_cost_panels", "plot_gap_vs_horizon",
           "plot_step_sensitivity"]
