"""The look every report figure shares, without Matplotlib's global state.

Figures are :class:`matplotlib.figure.Figure` objects made here, not by pyplot:
nothing registers them globally, so importing or running the report leaves the
user's backend and open figures alone, and a figure is freed when it goes out of
scope. Each gets its own Agg canvas, so drawing code that measures text (Seaborn's
heatmap checks whether tick labels overlap) works as it would on screen.

Seaborn's look (``whitegrid`` or ``white``, the ``notebook`` context) applies
inside :func:`style` only: an ``rc_context``, never ``set_theme``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"  # train vs validation / test, in every plot


@contextmanager
def style(name: str = "whitegrid") -> Iterator[None]:
    """Seaborn's ``name`` style and notebook context for the figures drawn inside."""
    rc = {**sns.axes_style(name), **sns.plotting_context("notebook", font_scale=0.9)}
    with matplotlib.rc_context(rc):
        yield


def new_figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    """A figure of ``figsize`` inches with its own Agg canvas (no pyplot, no backend change).

    Create it inside :func:`style`: rcParams apply when artists are made.
    """
    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def slant_xticklabels(ax: Axes, degrees: float) -> None:
    """Rotate the x tick labels, each ending under its own tick (anchored at its right end)."""
    for label in ax.get_xticklabels():
        label.set(rotation=degrees, ha="right", rotation_mode="anchor")


def curve_colors(k: int) -> list[Any]:
    """``k`` distinct colours: tab10 for up to ten classes, evenly spaced hues beyond."""
    return list(sns.color_palette("tab10" if k <= 10 else "husl", k))
