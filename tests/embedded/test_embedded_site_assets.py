"""`make run`'s server serves the API docs' assets and the icon itself (offline, under its CSP)."""

from __future__ import annotations

from tests.site_assets_check import check_offline_assets


def test_the_api_docs_assets_and_the_icon_come_from_the_server(embedded_env, processes):
    check_offline_assets(processes.web(embedded_env))
