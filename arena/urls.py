"""URL routes. Voter pages under /, staff pages under /staff/ and /admin/, JSON under /api/."""

from django.contrib import admin
from django.urls import include, path

from arena.admin import security as admin_security
from arena.api.site import api
from arena.web import site_assets, staff_views, views

arena_patterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.campaign_detail, name="campaign"),
    path("c/<slug:slug>/vote/", views.next_battle, name="next"),
    path("c/<slug:slug>/b/<str:battle_id>/", views.battle_page, name="battle-page"),
    path("b/<str:battle_id>/", views.battle_detail, name="battle"),
    path("b/<str:battle_id>/vote", views.vote, name="vote"),
    path("staff/c/<slug:slug>/", staff_views.campaign_dashboard, name="dashboard"),
    path("staff/c/<slug:slug>/status", staff_views.campaign_set_status, name="set-status"),
    path("staff/c/<slug:slug>/quality.json", staff_views.campaign_quality, name="quality"),
    path("staff/c/<slug:slug>/exclude", staff_views.voter_set_excluded, name="exclude-voter"),
]

urlpatterns = [
    path("", include((arena_patterns, "arena"))),
    path("admin/login/", admin_security.login, name="admin-login"),  # throttled; ahead of the admin's own
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", site_assets.favicon, name="favicon"),
    path("api/v1/", api.urls),
    path("", include("arena.web.leaderboard_urls")),
    path("", include("arena.web.live_urls")),
    path("", include("arena.web.ranking_urls")),
    path("", include("arena.web.export_urls")),
]
