"""The compression methods' default settings, one constant each, shared by the Python API
(amchw.compress.pipeline, imp), the command line (amchw compress) and report recipes. Plain
values only: the command line reads them without importing torch."""

#: Net-Trim (edge-efficient seed): relative bound on the layer's ReLU output change, and the
#: training frames whose activations form X
NET_TRIM_EPSILON = 0.08
NET_TRIM_FRAMES = 20000

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
