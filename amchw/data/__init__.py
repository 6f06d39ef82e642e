"""Data: the synthetic RadioML-like generator (numpy only); readers and torch wrappers follow."""
from .synthetic import (
    CLASSES_2016,
    CLASSES_2018,
    PROFILES,
    SNRS_2016,
    SNRS_2018,
    frames_for,
    synthesize,
)

__all__ = [
    "CLASSES_2016",
    "CLASSES_2018",
    "PROFILES",
    "SNRS_2016",
    "SNRS_2018",
    "frames_for",
    "synthesize",
]
