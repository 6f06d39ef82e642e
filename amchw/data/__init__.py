"""Data: the synthetic RadioML generator (numpy only), readers for RadioML 2016/2018 files and
amchw's own HDF5 files (h5py), and a torch Dataset (amchw.data.torch_dataset, imports torch)."""
from .radioml import (DatasetError, H5Frames, challenge_split, read_rml2016, synth_to_h5,
                      write_h5)
from .synthetic import (
    CHANNELS,
    CLASSES_2016,
    CLASSES_2018,
    PROFILES,
    SNRS_2016,
    SNRS_2018,
    Channel,
    frames_for,
    synthesize,
)

__all__ = [
    "CHANNELS",
    "CLASSES_2016",
    "CLASSES_2018",
    "Channel",
    "DatasetError",
    "H5Frames",
    "PROFILES",
    "SNRS_2016",
    "SNRS_2018",
    "challenge_split",
    "frames_for",
    "read_rml2016",
    "synth_to_h5",
    "synthesize",
    "write_h5",
]
