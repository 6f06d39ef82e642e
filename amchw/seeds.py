"""Published figures of the seed papers, printed next to ours in `amchw report` (never used to
compute anything). Each table keeps the paper's own units and rounding."""

EDGE = "edge-efficient seed (pruning, PQ and KD for AMC)"
GRU = "GRU-CNN seed (IMP + QAT on RadioML 2018.01A)"
COMPRESSION = "compression seed (classic optimization + quantization)"
EARLY_EXIT = "early-exit seed (Mohammed, Mashaal & Abou-Zeid, GLOBECOM 2023)"

#: Table I: Net-Trim with epsilon = 0.08 on the first FC layer (n_T, n_b, n_a, p_e)
EDGE_TABLE_I = {
    "vtcnn2": {"n_T": "2.70M", "n_b": "2.69M", "n_a": "94.47K", "p_e": 0.965},
    "resnet": {"n_T": "3.38M", "n_b": "3.37M", "n_a": "63.94K", "p_e": 0.981},
    "inception": {"n_T": "10.11M", "n_b": "10.07M", "n_a": "106.48K", "p_e": 0.9894},
}
EDGE_TABLE_I_EPSILON = 0.08

#: Table II: C_Q (64-bit float originals, K_s = 256) by P
EDGE_TABLE_II = {
    "vtcnn2": {2: 39.65, 8: 35.52, 16: 31.2},
    "resnet": {2: 49.56, 8: 42.92, 16: 36.76},
    "inception": {2: 133.20, 8: 95.8, 16: 69.76},
}

#: Table III: (student, teacher) -> (case, reduction ratio = student / teacher parameters,
#: accuracy compared to the benchmark student)
EDGE_TABLE_III = {
    ("vtcnn2", "inception"): ("I", 0.28, "Improved"),
    ("vtcnn2", "resnet"): ("II", 0.82, "Improved"),
    ("resnet", "inception"): ("III", 0.34, "Comparable"),
}

#: Table IV (VTCNN2): method -> (p_e, C_Q, accuracy compared to the benchmark)
EDGE_TABLE_IV = {
    "NT": (0.965, None, "Comparable"),
    "PQ": (None, 39.65, "Comparable"),
    "KD": (None, None, "Improved"),
    "DQ": (None, 39.65, "Marginally improved"),
    "DP": (0.971, None, "Marginally improved"),
}

#: Table 3: target sparsity -> (original model, parameters, average accuracy %, highest
#: accuracy %, memory footprint kB), 80 GRU cells, RadioML 2018.01A
GRU_TABLE_3 = {
    0.5: ("Proposed Model (80 cells)", 13144, 61.31, 96.43, 13.1),
    0.7: ("Model_Sparsity 0.5", 8210, 60.88, 95.95, 8.2),
    0.8: ("Model_Sparsity 0.7", 5742, 60.18, 95.27, 5.7),
    0.85: ("Model_Sparsity 0.8", 4509, 58.7, 94.01, 4.5),
}

#: Table III: model -> (accuracy, MACs, parameter memory MB); 10,000 frames at 30 dB
COMPRESSION_TABLE_III = {
    "cnn-matlab": ("Original", 0.977, 8127520, 0.3693999),
    "cnn-slim": ("Optimized", 0.9743, 2491798, 0.19202802),
    "cnn-slim int8": ("Optimized and Quantized", 0.9705, 2491798, 0.05206704),
}

#: Table 2: GRU cells -> (average accuracy %, highest accuracy %, trainable parameters,
#: memory footprint kB (4 bytes per parameter))
GRU_TABLE_2 = {
    40: (57.36, 90.72, 8632, 34), 50: (60.38, 95.35, 11920, 48), 60: (60.77, 95.79, 15840, 63),
    70: (60.85, 95.93, 20360, 81), 80: (61.66, 96.65, 25480, 102),
    90: (61.56, 96.45, 31200, 125), 100: (62.04, 96.78, 37107, 148),
}

#: Table 4, the conventional models it compares with: name -> (basic structure, average %,
#: highest %, parameters, memory footprint kB, inference time ms per sample on the authors'
#: machine); "37K" and "236K" are printed rounded
GRU_TABLE_4 = {
    "GRU": ("GRU", 60.26, 95.2, 39224, 156.9, 0.233),
    "MCNET": ("CNN", 58.3, 92.63, 151224, 604.9, 0.144),
    "Lightweight Backbone Network": ("CNN", 60.29, 95.7, 46472, 185.9, 0.14),
    "PET-CGDNN (sparsity 0.5)": ("CNN+GRU", 59.6, 94.9, 37000, 148, 0.219),
    "ResNet": ("CNN", 47.47, 76.04, 236000, 944, 0.164),
}

#: Table 4, the seed's own row: (average %, highest %, parameters, footprint kB, inference
#: time ms per sample on the authors' machine)
GRU_TABLE_4_OURS = (60.88, 95.95, 8210, 8.2, 0.073)
