"""ASGI entry point: Django for HTTP, Channels consumers for the live-battle websockets (and, in the
embedded mode, the in-process worker and beat: arena.embedded)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from arena.embedded import EmbeddedRuntime  # noqa: E402
from arena.web.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
if settings.ARENA_IN_PROCESS_WORKERS:  # the embedded mode: worker and beat start with the server
    application = EmbeddedRuntime(application)
