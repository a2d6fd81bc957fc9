"""Cutting a written line of digits into candidate digits (segmentation hypotheses).

The page is turned into ink the way :mod:`mnistlab.predict.preprocess` does it for
one digit (polarity, uneven light, printed lines and scanner edges removed by
:func:`mnistlab.predict.cleanup.remove_lines`); then::

    ink -> connected components (scipy.ndimage.label, 8-connected), specks dropped
    -> the line's digit height H (median height of the big components)
    -> atoms: each component, and components wider than a digit cut at the minima
       of their column ink profile (candidate cut points between touching digits)
    -> atoms ordered left to right by their centre
    -> hypotheses: runs of 1..MAX_ATOMS consecutive atoms (a digit broken into
       pieces is several atoms; a touching pair is one component cut in two),
       each brought into MNIST form (20 px box in 28x28, centre of mass)

Which hypotheses form the number is decided by the classifier
(:mod:`mnistlab.read.reader`): nothing here knows what a digit looks like beyond
its size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mnistlab.read.ink import mnist_form

__all__ = ["Atom", "Hypothesis", "hypotheses", "marks"]

# Ink stronger than this is part of a component.
INK_LEVEL = 0.2
# A component smaller than this fraction of the largest one's area is a speck...
SPECK_FRACTION = 0.02
# ... and (absolute floor) fewer pixels than this.
SPECK_PIXELS = 6
# A component this many times as long as it is thick, and longer than the tallest
# other component, is what is left of a printed line, not a stroke.
LINE_RATIO = 10
# A component is cut into candidate digits when wider than this many digit heights...
SPLIT_WIDTH = 0.6
# ... and also at regular steps (no minimum needed) when wider than this...
REGULAR_WIDTH = 0.9
# ... every this many H (a "1" squeezed between two digits is ~0.25 H wide).
REGULAR_STEP = 0.15
# A column with ink over this fraction of H is an upright stroke (a "1")...
STROKE_TALL = 0.6
# ... with candidate cuts this fraction of H either side of it.
STROKE_SIDE = 0.1
# Cut points keep this fraction of H from each other and from the component's ends.
CUT_MARGIN = 0.12
# At most this many atoms make one digit.
MAX_ATOMS = 10
# Atoms farther apart than this fraction of H are never one digit.
MAX_GAP = 0.3
# Components this close (fraction of H) may be one digit whatever their shapes (a
# stroke broken across: two tall halves side by side); the verifier decides.
NEAR_GAP = 0.15
# A piece lower than this fraction of H may join its neighbour (a broken stroke)...
SHORT = 0.75
# ... as may a piece under or over it by this fraction of the narrower one's width.
OVERLAP = 0.3
# Horizontal straight runs longer than this fraction of the image's height are printed...
FRAME_FRACTION = 0.6
# ... as are vertical ones taller than this many digit heights.
FRAME_HEIGHT = 1.12
# Ink this much stronger than a printed line's median level, on the line, is a stroke.
CROSSING = 0.2
# A straight upright run this fraction of the gap between two printed lines long,
# ending on one of them, is a box's side.
BOX_SIDE = 0.8
# Over this many components the page is not one line of digits: no further analysis.
MAX_COMPONENTS = 100
# Components whose x ranges overlap by this fraction of the narrower width are one digit.
STACKED = 0.6
# A hypothesis wider than this many H is never one digit.
MAX_WIDTH = 1.6


@dataclass(frozen=True)
class Atom:
    """A piece of ink: component ``label`` between columns ``x0`` and ``x1`` (working px)."""

    label: int
    x0: int
    x1: int
    y0: int
    y1: int
    cut_right: bool = False  # its right edge is a cut through a component
    piece: int = 0  # its number in the piece map of atoms_of (0: the whole component)

    @property
    def centre(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass(frozen=True)
class Hypothesis:
    """Atoms ``start`` .. ``stop - 1`` taken as one digit.

    ``image`` is its MNIST form, ``box`` (x0, y0, x1, y1) its ink's box in working
    px, ``width`` and ``height`` that box's size in digit heights, ``mask`` (box-sized,
    bool) which of the box's pixels are its ink; ``cut_left`` / ``cut_right``: its
    left / right edge is a cut through a component.
    """

    start: int
    stop: int
    image: np.ndarray
    box: tuple[int, int, int, int]
    width: float
    height: float
    cut_right: bool = False
    cut_left: bool = False
    mask: np.ndarray | None = None


def components(ink: np.ndarray) -> tuple[np.ndarray, list[Atom], float]:
    """Labels, one atom per component that is not a speck, and the digit height H (px)."""
    labels, n = ndimage.label(ink > INK_LEVEL, structure=np.ones((3, 3)))
    if n == 0:
        return labels, [], 0.0
    area = ndimage.sum_labels(np.ones_like(ink), labels, index=np.arange(1, n + 1))
    keep = (area >= SPECK_FRACTION * area.max()) & (area >= SPECK_PIXELS)
    atoms = []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is not None and keep[i]:
            atoms.append(Atom(i + 1, sl[1].start, sl[1].stop, sl[0].start, sl[0].stop))
    if not atoms:
        return labels, [], 0.0
    # Leftovers of printed lines (a box's top between two digits): long and very thin.
    sides = [sorted((a.x1 - a.x0, a.y1 - a.y0)) for a in atoms]
    rest = [a for a, (short, long) in zip(atoms, sides, strict=True) if long < LINE_RATIO * short]
    if rest:
        tallest = max(a.y1 - a.y0 for a in rest)
        atoms = [
            a
            for a, (short, long) in zip(atoms, sides, strict=True)
            if long < LINE_RATIO * short or long < tallest
        ]
    if len(atoms) <= MAX_COMPONENTS:  # more: not a line of digits (the reader says so)
        labels, atoms = _join_stacked(labels, atoms)
    heights = np.array([a.y1 - a.y0 for a in atoms], float)
    areas = np.array([(labels == a.label).sum() for a in atoms])
    big = heights[areas >= 0.3 * areas.max()]
    height = float(np.median(big[big >= 0.6 * big.max()]))
    return labels, atoms, max(height, 1.0)


def _join_stacked(labels: np.ndarray, atoms: list[Atom]) -> tuple[np.ndarray, list[Atom]]:
    """Components one above the other (x ranges overlapping by STACKED of the narrower
    one's width, rows by less than STACKED of the lower one's height) are one digit
    broken in two: one line of digits holds no digit over another."""
    atoms = sorted(atoms, key=lambda a: a.x0)
    joined = True
    while joined:
        joined = False
        for i, a in enumerate(atoms):
            for j in range(i + 1, len(atoms)):
                b = atoms[j]
                overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
                beside = min(a.y1, b.y1) - max(a.y0, b.y0)  # rows both span
                if overlap >= STACKED * min(a.x1 - a.x0, b.x1 - b.x0) and beside < STACKED * min(
                    a.y1 - a.y0, b.y1 - b.y0
                ):
                    labels = np.where(labels == b.label, a.label, labels)
                    merged = Atom(
                        a.label, min(a.x0, b.x0), max(a.x1, b.x1), min(a.y0, b.y0), max(a.y1, b.y1)
                    )
                    atoms = [merged, *atoms[:i], *atoms[i + 1 : j], *atoms[j + 1 :]]
                    atoms.sort(key=lambda c: c.x0)
                    joined = True
                    break
            if joined:
                break
    return labels, atoms


def _cuts(ink: np.ndarray, labels: np.ndarray, atom: Atom, height: float) -> list[float]:
    """Candidate columns where a wide component may hold two digits touching
    (relative to ``atom.x0``)."""
    width = atom.x1 - atom.x0
    if width <= SPLIT_WIDTH * height:
        return []
    part = labels[atom.y0 : atom.y1, atom.x0 : atom.x1] == atom.label
    profile = ndimage.gaussian_filter1d(part.sum(axis=0).astype(float), sigma=max(1, height / 20))
    margin = max(2, round(CUT_MARGIN * height))
    inner = np.arange(margin, width - margin)
    if len(inner) == 0:
        return []
    # Local minima of the profile (flat runs count once), lowest first.
    left = np.r_[np.inf, profile[:-1]]
    right = np.r_[profile[1:], np.inf]
    minima = [int(x) for x in inner if profile[x] <= left[x] and profile[x] < right[x]]
    minima.sort(key=lambda x: profile[x])
    most = int(3 * width / height) + 2
    chosen: list[int] = []
    for x in minima:
        if all(abs(x - c) >= margin for c in chosen):
            chosen.append(x)
        if len(chosen) >= most:
            break
    # Either side of an upright stroke (a "1" squeezed between its neighbours is a
    # peak of the profile, not a minimum): cuts STROKE_SIDE of H left and right of it.
    side = max(2, round(STROKE_SIDE * height))
    for peak in inner.tolist():
        if (
            profile[peak] >= STROKE_TALL * height
            and profile[peak] >= left[peak]
            and profile[peak] > right[peak]
        ):
            for c in (peak - side, peak + side):
                if margin <= c < width - margin and all(abs(c - o) >= side for o in chosen):
                    chosen.append(int(c))
    if width > REGULAR_WIDTH * height:
        # Regular cuts as well where the profile has no minimum (digits overlapping wholly).
        step = max(margin, round(REGULAR_STEP * height))
        for x in range(margin + step, width - margin, step):
            if all(abs(x - c) >= margin // 2 + 1 for c in chosen):
                chosen.append(x)
    return sorted(float(c) for c in chosen)


def _opening(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Binary opening by a straight line of ``length`` px along ``axis`` (runs that long).

    Minimum then maximum filter along one axis (scipy.ndimage, van Herk: linear in
    the image's size whatever the length), far quicker than a 2-D binary opening.
    """
    work = mask.astype(np.uint8)
    eroded = ndimage.minimum_filter1d(work, length, axis=axis, mode="constant", cval=0)
    return ndimage.maximum_filter1d(eroded, length, axis=axis, origin=-(length % 2 == 0)) > 0


def strip_frames(ink: np.ndarray) -> np.ndarray:
    """Remove what is left of printed boxes: straight horizontal runs longer than
    FRAME_FRACTION of the image's height and 0.9 of the tallest marks' height (no
    handwritten stroke runs that straight so long), then straight vertical runs
    taller than FRAME_HEIGHT digit heights.

    A second pass after :func:`mnistlab.predict.cleanup.remove_lines`, for boxes too
    short or too pale for it (a row of form boxes); a stroke crossing a removed line
    loses a few pixels there, which the merging of broken strokes takes.
    """
    mask = ink > INK_LEVEL
    _, atoms, height = components(ink)
    length = max(9, round(FRAME_FRACTION * ink.shape[0]), round(0.9 * height))
    across = _opening(mask, length, axis=1)
    out = np.where(_printed(ink, across), np.float32(0), ink) if across.any() else ink
    _, atoms, height = components(out)
    # Upright sides of boxes (also where remove_lines took their horizontal sides).
    if atoms:
        tall = max(9, round(FRAME_HEIGHT * height))
        upright = _opening(out > INK_LEVEL, tall, axis=0)
        if across.any():
            upright |= _box_sides(out > INK_LEVEL, across)
        out = np.where(_printed(out, upright), np.float32(0), out)
    return out.astype(np.float32, copy=False)


def _box_sides(mask: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Straight upright runs from a removed horizontal line to the next one: the sides
    of boxes whose digits touch them (then H, measured on digit and side together, is
    the box's height, and FRAME_HEIGHT * H misses them). A handwritten stroke is
    neither that straight nor that long, nor does it end on both lines."""
    rows = np.flatnonzero(across.any(axis=1))
    # The gaps between the found lines (rows of one thick line are no gap).
    gaps = np.diff(rows)
    gaps = gaps[gaps > 3]
    if len(gaps) == 0:
        return np.zeros_like(mask)
    span = int(gaps.min())
    runs = _opening(mask, max(9, round(BOX_SIDE * span)), axis=0)
    # Only runs that reach a removed line at one end at least.
    near = ndimage.binary_dilation(across, structure=np.ones((5, 1), bool))
    labels, n = ndimage.label(runs)
    if n == 0:
        return runs
    touching = np.unique(labels[near & runs])
    return np.isin(labels, touching[touching > 0])


def _printed(ink: np.ndarray, line: np.ndarray) -> np.ndarray:
    """The pixels of a found printed ``line`` that are the line's own ink.

    Where a stroke crosses a paler line the ink is the stroke's, darker than the
    line's typical level by CROSSING: those pixels stay, so the digit is not cut in
    two along the line (a line as dark as the ink takes the crossing with it).
    """
    if not line.any():
        return line
    level = float(np.median(ink[line]))
    return line & (ink <= level + CROSSING)


def atoms_of(ink: np.ndarray) -> tuple[np.ndarray, list[Atom], float]:
    """The piece map, the atoms (components cut at candidate points) left to right, and H.

    The piece map holds ``atom.piece`` on each atom's pixels (0 elsewhere); the
    pieces of a component between consecutive cuts (upright: slanted cuts crossing
    the least ink were tried and read touching digits worse) are the atoms.
    """
    labels, atoms, height = components(strip_frames(ink))
    piece_map = np.zeros(labels.shape, np.int32)
    pieces: list[Atom] = []
    for atom in atoms:
        part = labels[atom.y0 : atom.y1, atom.x0 : atom.x1] == atom.label
        cuts = _cuts(ink, labels, atom, height)
        # Which side of each cut every pixel is on: the piece's index left to right.
        side = np.zeros(part.shape, np.int32)
        columns = np.arange(part.shape[1])[np.newaxis, :]
        for x in cuts:
            side += columns >= x
        region = piece_map[atom.y0 : atom.y1, atom.x0 : atom.x1]
        for k in range(len(cuts) + 1):
            mine = part & (side == k)
            if not mine.any():
                continue
            rows, cols = np.nonzero(mine.any(axis=1))[0], np.nonzero(mine.any(axis=0))[0]
            region[mine] = len(pieces) + 1
            pieces.append(
                Atom(
                    atom.label,
                    atom.x0 + int(cols[0]),
                    atom.x0 + int(cols[-1]) + 1,
                    atom.y0 + int(rows[0]),
                    atom.y0 + int(rows[-1]) + 1,
                    cut_right=k < len(cuts),
                    piece=len(pieces) + 1,
                )
            )
    pieces.sort(key=lambda a: a.centre)
    return piece_map, pieces, height


def _mask(
    piece_map: np.ndarray, atoms: list[Atom], n_pieces: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The atoms' pixels within their box, and the box (pieces are 1..n_pieces)."""
    x0, x1 = min(a.x0 for a in atoms), max(a.x1 for a in atoms)
    y0, y1 = min(a.y0 for a in atoms), max(a.y1 for a in atoms)
    chosen = np.zeros(n_pieces + 1, bool)  # a lookup table: far quicker than np.isin
    chosen[[a.piece for a in atoms]] = True
    return chosen[piece_map[y0:y1, x0:x1]], (x0, y0, x1, y1)


def _joinable(group: list[Atom], nxt: Atom, height: float) -> bool:
    """May ``nxt`` be part of the same digit as ``group``?

    The next piece of a component that was cut: yes. Another component: only as a
    broken stroke, i.e. near (gap under MAX_GAP of H) and either short (under
    SHORT of H: a 5's bar, a piece of a loop) or under the group (overlapping it
    by OVERLAP of the narrower's width). Two whole, tall components side by side
    are two digits.
    """
    if nxt.label == group[-1].label and group[-1].cut_right:
        return True
    gap = min(max(nxt.x0 - a.x1, a.x0 - nxt.x1) for a in group)
    if gap > MAX_GAP * height:
        return False
    if gap <= NEAR_GAP * height:
        return True
    x0, x1 = min(a.x0 for a in group), max(a.x1 for a in group)
    y0, y1 = min(a.y0 for a in group), max(a.y1 for a in group)
    short = min(nxt.y1 - nxt.y0, y1 - y0) < SHORT * height
    overlap = min(x1, nxt.x1) - max(x0, nxt.x0)
    return short or overlap >= OVERLAP * min(x1 - x0, nxt.x1 - nxt.x0)


def marks(atoms: list[Atom]) -> int:
    """How many separate marks (components, before cutting) the atoms come from."""
    return len({a.label for a in atoms})


def hypotheses(
    ink: np.ndarray, max_marks: int | None = None
) -> tuple[list[Atom], list[Hypothesis], float]:
    """Every run of consecutive atoms that may be one digit, in MNIST form.

    Returns
    -------
    (atoms, hypotheses, H): hypotheses cover atoms ``start..stop-1``; H is the
    line's digit height in working px (0 when there is no ink). No hypotheses
    when there are more than ``max_marks`` separate marks (components).
    """
    piece_map, atoms, height = atoms_of(ink)
    out: list[Hypothesis] = []
    if max_marks is not None and marks(atoms) > max_marks:
        return atoms, out, height  # not a line of digits: not worth cutting
    for start in range(len(atoms)):
        for stop in range(start + 1, min(start + MAX_ATOMS, len(atoms)) + 1):
            group = atoms[start:stop]
            if stop - start > 1 and not _joinable(group[:-1], group[-1], height):
                break
            mask, box = _mask(piece_map, group, len(atoms))
            width = (box[2] - box[0]) / height
            if width > MAX_WIDTH and stop - start > 1:
                break
            x0, y0, x1, y1 = box
            crop = np.where(mask, ink[y0:y1, x0:x1], 0).astype(np.float32)
            if not crop.any():
                continue
            out.append(
                Hypothesis(
                    start,
                    stop,
                    mnist_form(crop),
                    box,
                    width,
                    (y1 - y0) / height,
                    cut_right=group[-1].cut_right,
                    cut_left=start > 0
                    and atoms[start - 1].cut_right
                    and atoms[start - 1].label == group[0].label,
                    mask=mask,
                )
            )
    return atoms, out, height
