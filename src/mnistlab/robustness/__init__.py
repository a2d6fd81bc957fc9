"""Robustness: a run's accuracy on test digits under the 15 corruptions of MNIST-C.

- :mod:`~mnistlab.robustness.corruptions`: the corruptions, one function each,
  registered by name (:data:`CORRUPTIONS`), seeded (:func:`corrupt`);
- :mod:`~mnistlab.robustness.benchmark`: :func:`robustness`, the model on
  corrupted arrays and the whole ``predict`` pipeline on corrupted images,
  written to the run's ``robustness.json``;
- :mod:`~mnistlab.robustness.figures`: examples of each corruption, accuracy bars.

A driver like ``bench``: it measures saved runs and adds no modelling code.

>>> corruption_names()[:3]
('shot_noise', 'impulse_noise', 'glass_blur')
"""

from mnistlab.robustness.benchmark import EXAMPLES, format_robustness, robustness
from mnistlab.robustness.corruptions import CORRUPTIONS, corrupt, corruption_names
from mnistlab.robustness.figures import draw_accuracy, draw_examples

__all__ = [
    "CORRUPTIONS",
    "EXAMPLES",
    "corrupt",
    "corruption_names",
    "draw_accuracy",
    "draw_examples",
    "format_robustness",
    "robustness",
]
