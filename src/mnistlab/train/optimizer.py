"""The optimiser a run trains with: Adam or AdamW, its learning-rate schedule, loss, metric."""

from __future__ import annotations

from typing import Any

import keras

from mnistlab.config import TrainConfig


def compile_model(model: Any, config: TrainConfig, steps_per_epoch: int) -> None:
    """Attach optimiser, learning-rate schedule, loss and metric from ``config``.

    The schedule is a function of the optimiser's step count, which checkpoints
    save, so a resumed run continues on the same curve.
    """

    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        lr: Any = config.learning_rate
    else:
        # Linear warm-up from 0 to the peak, then cosine decay to 0 at the last epoch.
        warmup = (
            int(0.3 * total)
            if config.schedule == "onecycle"
            else int(config.warmup_epochs * steps_per_epoch)
        )
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate,
            decay_steps=max(total - warmup, 1),
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if config.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
