"""What every page module of the UI renders and reads with: the templates, a page answered with
its status, and a form's fields within a size limit.

They live apart from :mod:`mlship.ui.app` so that the modules adding pages (``add_*_routes``),
which the app calls, need not import the app back. The app registers the filters and globals
the templates use (the navigation among them) when it is imported, before any page is served.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from mlship.ui.access import Refused, Viewer

PREFIX = "/ui"
MAX_FORM_BYTES = 64 * 1024

templates = Environment(
    loader=PackageLoader("mlship.ui", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` rendered with ``context``, answered with status ``code``."""
    return HTMLResponse(templates.get_template(name).render(**context), status_code=code)


def render(request: Request, viewer: Viewer | None, name: str, **context: Any) -> Response:
    """A page for ``viewer`` (``status`` in ``context`` is its status code)."""
    code = context.pop("status", 200)
    htmx = request.headers.get("hx-request") == "true"
    return page(name, code, viewer=viewer, htmx=htmx, request=request, **context)


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last value of each); a larger body is refused."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, f"a form of more than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8 text") from None
    return {key: values[-1] for key, values in fields.items()}


REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
"""The Content-Security-Policy of a report page served inline (styles and images of its own,
no script), framed only by the UI itself."""
