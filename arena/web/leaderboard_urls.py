from django.urls import path

from arena.web import leaderboard_views as views

app_name = "ratings"

urlpatterns = [
    path("c/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("c/<slug:slug>/leaderboard.json", views.leaderboard_json, name="leaderboard-json"),
    path("c/<slug:slug>/leaderboard.csv", views.leaderboard_csv, name="leaderboard-csv"),
]
