"""Websocket routes (live battles)."""

from django.urls import re_path

from arena.web.consumers import BattleConsumer

websocket_urlpatterns: list = [
    re_path(r"^ws/battles/(?P<battle_id>[A-Za-z0-9_-]{1,64})/$", BattleConsumer.as_asgi()),
]
