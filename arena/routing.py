"""Websocket routes (live battles)."""


websocket_urlpatterns: list = []
