"""`amchw sweep`: design-space sweeps on Dask. A spec (spec.py) declares the grid; each model
is resolved and lowered once and each weight format applied to its integer graph
(variants.py); the points are enumerated in a fixed order and simulated in chunks by Dask
workers (points.py, engine.py), each chunk written as a Parquet part so a killed sweep
resumes; the answers are the Pareto fronts and the best points under the spec's conditions
(answers.py). docs/sweep.md is the reference."""

from .answers import pareto_front, summarise
from .engine import SweepError, run_sweep
from .spec import Best, Spec, SpecError, load_spec

__all__ = ["Best", "Spec", "SpecError", "SweepError", "load_spec", "pareto_front",
           "run_sweep", "summarise"]
