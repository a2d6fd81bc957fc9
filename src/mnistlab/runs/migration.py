"""Opening runs written before run.json recorded its kind: migration on read.

mnistlab 0.1.0 wrote no ``kind`` into ``run.json`` and made an ensemble's
``config.json`` a training config with ``model: "ensemble"`` (its members in
``params``). Such runs still open: when a run.json has no ``kind``, the kind
is inferred here, once, from what that version wrote, and an old ensemble
config is read as an :class:`mnistlab.config.EnsembleConfig`. The next write
of ``run.json`` (:meth:`RunDir.write_state`) records the inferred kind.

This module is the one place that looks at such strings; everything else asks
the run for its :attr:`RunDir.kind`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnistlab.runs.records import RunKind

# How 0.1.0's mnistlab.cv began a fold's data source ("cross-validation fold 2/5 of ...").
CV_FOLD_SOURCE = "cross-validation fold"

# What 0.1.0 put in an ensemble's config.json as its model name.
_OLD_ENSEMBLE_MODEL = "ensemble"


def infer_kind(state: dict[str, Any], config: dict[str, Any] | None, path: Path) -> RunKind:
    """The kind of a run whose ``run.json`` does not say (written before kinds, or lost).

    Parameters
    ----------
    state : what ``run.json`` holds (empty when it is missing or unreadable).
    config : what ``config.json`` holds (None when unreadable).
    path : the run directory.

    Returns
    -------
    ``"ensemble"`` for an ensemble's config (the old form, or the current one when
    run.json is lost), ``"cv-fold"`` for a data source that says so, ``"tune-trial"``
    for ``<runs_dir>/tune/<study>/trial-<n>``, else ``"train"``.
    """
    if config is not None and (config.get("model") == _OLD_ENSEMBLE_MODEL or "members" in config):
        return "ensemble"
    if str(state.get("data_source", "")).startswith(CV_FOLD_SOURCE):
        return "cv-fold"
    if path.name.startswith("trial-") and path.parent.parent.name == "tune":
        return "tune-trial"
    return "train"


def migrate_config(config: dict[str, Any]) -> dict[str, Any]:
    """An ensemble's ``config.json`` in the current form (0.1.0's form converted).

    0.1.0: a training config with ``model: "ensemble"`` and
    ``params: {"members": [...], "member_models": [...]}``; now:
    ``{"dataset", "members", "member_models"}``. Anything else is returned as it is.
    """
    if config.get("model") != _OLD_ENSEMBLE_MODEL:
        return config
    params = config.get("params") or {}
    return {
        "dataset": config.get("dataset"),
        "members": list(params.get("members") or []),
        "member_models": list(params.get("member_models") or []),
    }
