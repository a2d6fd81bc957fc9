"""Training: one run from a config to a saved model in a run directory, resumable.

- :mod:`~mnistlab.train.loop`: :func:`train` (new or resumed runs) around Keras ``fit``,
  and how a run's ending is recorded;
- :mod:`~mnistlab.train.pipeline`: the ``tf.data`` input pipeline and its augmentation;
- :mod:`~mnistlab.train.perturbations`: the training-time perturbations (backgrounds,
  noise, blur, strokes, ...) the pipeline applies to a share of each batch;
- :mod:`~mnistlab.train.seeds`: every random choice as a function of (seed, epoch);
- :mod:`~mnistlab.train.optimizer`: optimiser, learning-rate schedule, loss
  (:func:`compile_model`);
- :mod:`~mnistlab.train.checkpoints`: per-epoch checkpoints and their commit record;
- :mod:`~mnistlab.train.callbacks`: early stopping, history, commits, deferred Ctrl-C.
"""

from mnistlab.train.callbacks import (
    MONITOR,
    CheckpointCommitter,
    EarlyStopper,
    EpochSeeds,
    HistoryWriter,
    InterruptCheck,
    StopOnDivergence,
    TrainingDiverged,
)
from mnistlab.train.checkpoints import Checkpoints, ResumePoint
from mnistlab.train.loop import TrainingInterrupted, train
from mnistlab.train.optimizer import compile_model
from mnistlab.train.perturbations import PERTURBATIONS, perturb_batch
from mnistlab.train.pipeline import augment_batch, augment_transforms, make_pipeline
from mnistlab.train.seeds import derive_seed, epoch_order

__all__ = [
    "MONITOR",
    "PERTURBATIONS",
    "CheckpointCommitter",
    "Checkpoints",
    "EarlyStopper",
    "EpochSeeds",
    "HistoryWriter",
    "InterruptCheck",
    "ResumePoint",
    "StopOnDivergence",
    "TrainingDiverged",
    "TrainingInterrupted",
    "augment_batch",
    "augment_transforms",
    "compile_model",
    "derive_seed",
    "epoch_order",
    "make_pipeline",
    "perturb_batch",
    "train",
]
