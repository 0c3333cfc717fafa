"""A distributed web process serves the API docs' assets and the icon itself (no CDN, under its CSP)."""

from __future__ import annotations

from tests.site_assets_check import check_offline_assets


def test_the_api_docs_assets_and_the_icon_come_from_the_web_process(stack_env, processes):
    check_offline_assets(processes.web(stack_env))
