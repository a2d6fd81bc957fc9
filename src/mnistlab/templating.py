"""HTML pages from Jinja2 templates: one environment, one base layout, one stylesheet.

Every page mnistlab writes or serves (``report.html``, the tuning dashboard, the
drawing page of ``mnistlab serve``) is a template in ``mnistlab/templates/`` that
extends ``base.html``, which inlines ``style.css``. Autoescaping is on for every
template, so run names, notes and file names that reach a page are escaped by
the engine; markup a page builds on purpose is passed through ``markupsafe.Markup``.

>>> html = render("base.html", title="<b>x</b>", subtitle="", version="0", generated="now")
>>> "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
True
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: package templates, autoescaping, undefined names an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mnistlab", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """Render ``mnistlab/templates/<template>`` with ``context``."""
    return environment().get_template(template).render(**context)
