"""Routes of live battles (voters write the prompt). The websocket route is in arena.web.routing."""

from django.urls import path

from arena.web import live_views

app_name = "arena_live"

urlpatterns: list = [
    path("c/<slug:slug>/live/", live_views.start, name="start"),
    path("b/<str:battle_id>/live/", live_views.battle_page, name="battle"),
    path("b/<str:battle_id>/live/turn", live_views.add_turn, name="turn"),
]
