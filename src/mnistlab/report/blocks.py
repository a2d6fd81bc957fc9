"""What a report page is made of: sections of paragraphs, tables, figures and cards.

These are plain data; the Jinja2 templates (``templates/report/blocks.html``)
turn them into HTML, with autoescaping: a run name, a note or a file name in a
block is text, whatever characters it holds. A block that must carry markup of
its own is a :class:`markupsafe.Markup` string (trusted, inserted as it is); any
other ``str`` in a section's blocks is shown as escaped text.

>>> section = Section("Calibration <draft>", [Paragraph("ECE < 0.01 & falling")])
>>> section.id
'calibration-draft'
>>> print(render_block(section.blocks[0]))
<p>ECE &lt; 0.01 &amp; falling</p>
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from markupsafe import Markup

from mnistlab.templating import environment


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of text; ``cls="note"`` shows it in the muted colour of a note."""

    text: str
    cls: str = ""
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Table:
    """A table; every cell is shown as ``str(cell)``.

    Attributes
    ----------
    columns : header cells; None for a table without a header row.
    rows : body rows.
    foot : summary rows (e.g. averages), shown after the body in bold.
    numeric : per column, right-align it (numbers line up on the decimal point).
    cls : CSS class of the table (``"kv"``: a key/value table).
    scroll : scroll sideways on its own when wider than the page (many columns).
    """

    columns: Sequence[Any] | None
    rows: Sequence[Sequence[Any]]
    foot: Sequence[Sequence[Any]] = ()
    numeric: Sequence[bool] | None = None
    cls: str = ""
    scroll: bool = False
    kind: ClassVar[str] = "table"

    @property
    def align(self) -> list[bool]:
        """Per column, whether it is right-aligned (``numeric``, default none)."""
        if self.numeric is not None:
            return list(self.numeric)
        first = self.columns if self.columns is not None else self.rows[0] if self.rows else ()
        return [False] * len(first)


@dataclass(frozen=True)
class PngFigure:
    """A PNG figure with a caption, embedded in the page as a ``data:`` URI.

    Embedding keeps the page one file that opens offline and can be mailed.
    """

    path: Path
    caption: str
    alt: str = ""
    kind: ClassVar[str] = "figure"

    @property
    def src(self) -> str:
        """The PNG as a ``data:image/png;base64,...`` URI."""
        data = base64.b64encode(Path(self.path).read_bytes()).decode("ascii")
        return f"data:image/png;base64,{data}"


@dataclass(frozen=True)
class Cards:
    """Headline numbers in large type: ``(label, value)`` pairs."""

    items: Sequence[tuple[str, str]]
    kind: ClassVar[str] = "cards"


Block = Paragraph | Table | PngFigure | Cards | Markup | str


@dataclass(frozen=True)
class Section:
    """One section of a page: a heading, an entry in the table of contents, its blocks.

    Attributes
    ----------
    title : heading text.
    blocks : what the section shows, in order.
    anchor : ``id`` for the table of contents; derived from the title if empty.
    """

    title: str
    blocks: Sequence[Block] = field(default_factory=list)
    anchor: str = ""

    @property
    def id(self) -> str:
        """The section's ``id``: ``anchor``, or the title in lower case with dashes."""
        return self.anchor or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def render_block(block: Block) -> Markup:
    """One block as HTML (the macro the pages use), e.g. to check or reuse it alone."""
    macros: Any = environment().get_template("report/blocks.html").make_module()
    return Markup(str(macros.render_block(block)).strip())
