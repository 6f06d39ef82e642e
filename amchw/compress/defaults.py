"""The compression methods' default settings, one constant each, shared by the Python API
(amchw.compress.pipeline, imp, distill, nettrim) and the methods' registry entries
(amchw.compress.methods), from which the command line (amchw compress) and report recipes take
them. Plain values only: the command line reads them without importing torch."""

#: Net-Trim (edge-efficient seed): relative bound on the layer's ReLU output change, the
#: training frames whose activations form X, and the ADMM penalty
NET_TRIM_EPSILON = 0.08
NET_TRIM_FRAMES = 20000
NET_TRIM_RHO = 1.0
NET_TRIM_MAX_ITER = 5000     # the sparse phase's cap: not converged by then is an error

#: post-training quantization (compression seed): calibration frames from the validation split
PTQ_CALIBRATION_FRAMES = 1000

#: product quantization (edge-efficient seed): centroids per subspace, retraining epochs (the
#: seed's 20 when asked) and the fraction of the training frames retraining uses
PQ_CENTROIDS = 256
PQ_RETRAIN_EPOCHS = 0
PQ_TRAIN_FRACTION = 0.1

#: knowledge distillation (edge-efficient seed, Algorithm 3): temperature, alpha and the loss
#: convention (one of KD_CONVENTIONS, amchw.compress.distill)
KD_TEMPERATURE = 10.0
KD_ALPHA = 0.5
KD_CONVENTION = "edge"
KD_CONVENTIONS = ("edge", "hinton")

#: early-exit networks: training as `amchw train` (TrainConfig's defaults); the report's entropy
#: threshold for the per-SNR table (the seed's) and its threshold sweep
EARLY_EXIT_EPOCHS = 10
EARLY_EXIT_BATCH_SIZE = 256
EARLY_EXIT_LR = 1e-3
EARLY_EXIT_PATIENCE = 3
EARLY_EXIT_THRESHOLD = 0.05
EARLY_EXIT_SWEEP = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)

#: IMP with QAT (GRU-CNN seed): the stages' target sparsities, the epochs of each stage over
#: which the sparsity rises, where the first stage's polynomial schedule starts, optimizer
#: steps between pruning steps, and the schedule's exponent
IMP_SCHEDULE = (0.5, 0.7, 0.8, 0.85)
IMP_PRUNE_EPOCHS = 5
IMP_INITIAL_SPARSITY = 0.2
IMP_FREQUENCY = 100
IMP_POWER = 3.0
#: each IMP stage's training (the seed's): prune_epochs + this many retraining epochs, batch
#: size, learning rate and early-stopping patience
IMP_RETRAIN_EPOCHS = 15
IMP_BATCH_SIZE = 128
IMP_LR = 1e-4
IMP_PATIENCE = 12


def imp_training(prune_epochs: int = IMP_PRUNE_EPOCHS) -> dict:
    """The TrainConfig overrides of an IMP stage (the seed's)."""
    return {"epochs": prune_epochs + IMP_RETRAIN_EPOCHS, "batch_size": IMP_BATCH_SIZE,
            "lr": IMP_LR, "patience": IMP_PATIENCE}
