"""The models: a registry of networks by name, this package's Keras layers, saved models.

- :mod:`~mnistlab.models.registry`: :class:`ModelSpec`, :func:`register`,
  :func:`list_models`, :func:`get_model_spec`, :func:`build_model`, :func:`count_params`;
- :mod:`~mnistlab.models.networks`: the models, one registered function each (adding
  a model is adding one function there);
- :mod:`~mnistlab.models.layers`: the fused batch normalisation and the deskewing layer;
- :mod:`~mnistlab.models.saving`: :func:`load_saved_model`.
"""

# networks registers the models: imported here, so that any import of this package
# (``from mnistlab.models import list_models``) sees every model.
from mnistlab.models import networks as _networks  # noqa: F401
from mnistlab.models.layers import deskew_class, deskew_images, fused_batchnorm_class
from mnistlab.models.registry import (
    INPUT_SHAPE,
    NUM_CLASSES,
    ModelSpec,
    build_model,
    count_params,
    get_model_spec,
    list_models,
    register,
)
from mnistlab.models.saving import load_saved_model

__all__ = [
    "INPUT_SHAPE",
    "NUM_CLASSES",
    "ModelSpec",
    "build_model",
    "count_params",
    "deskew_class",
    "deskew_images",
    "fused_batchnorm_class",
    "get_model_spec",
    "list_models",
    "load_saved_model",
    "register",
]
