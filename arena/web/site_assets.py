"""Files browsers ask for at fixed addresses: /favicon.ico leads to the site's icon."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET


@require_GET
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers and bookmark tools fetch /favicon.ico without reading the page: send them to the SVG icon."""
    response = HttpResponsePermanentRedirect(static("arena/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response
