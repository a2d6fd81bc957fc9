"""Trust: calibrated probabilities, and saying "not a digit" or "unsure" instead of guessing.

- :mod:`~mnistlab.trust.outliers`: images that are not digits (Fashion-MNIST, letters,
  symbols and other scripts rendered from the installed fonts, doodles, scribbles,
  blots, noise), split by font and seed into train / val / test;
- :mod:`~mnistlab.trust.scores`: out-of-distribution scores (max softmax probability,
  energy, Mahalanobis, kNN);
- :mod:`~mnistlab.trust.checks`: input checks (ink everywhere, several digits side by side);
- :mod:`~mnistlab.trust.fitting`: after training, calibrate and choose the abstention
  rule on validation data (:func:`train_trusted`, :func:`fit_trust`);
- :mod:`~mnistlab.trust.abstention`: applying the rule (:class:`Abstainer`);
- :mod:`~mnistlab.trust.exposure`: outlier exposure (a fine-tuned copy scoring non-digits);
- :mod:`~mnistlab.trust.selective`: the rule measured on the test digits (coverage,
  selective accuracy, examples);
- :mod:`~mnistlab.trust.benchmark`: the OOD comparison per method and outlier kind.
"""

from mnistlab.trust.abstention import REASONS, Abstainer, explain
from mnistlab.trust.fitting import (
    TARGET_KEEP,
    choose_thresholds,
    fit_trust,
    prepare_trained,
    train_trusted,
)
from mnistlab.trust.outliers import KINDS, make_outliers, mnist_form
from mnistlab.trust.scores import METHODS, FeatureStats, ood_score
from mnistlab.trust.selective import measure_abstention

__all__ = [
    "KINDS",
    "METHODS",
    "REASONS",
    "TARGET_KEEP",
    "Abstainer",
    "FeatureStats",
    "choose_thresholds",
    "explain",
    "fit_trust",
    "make_outliers",
    "measure_abstention",
    "mnist_form",
    "ood_score",
    "prepare_trained",
    "train_trusted",
]
