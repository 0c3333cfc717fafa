"""Routes of ranking tasks (a voter orders N responses to one prompt)."""

from django.urls import path

from arena.web import ranking_views

app_name = "arena_rank"

urlpatterns: list = [
    path("c/<slug:slug>/rank/", ranking_views.next_ranking, name="next"),
    path("r/<str:ranking_id>/", ranking_views.ranking_detail, name="ranking"),
    path("r/<str:ranking_id>/submit", ranking_views.submit, name="submit"),
]
