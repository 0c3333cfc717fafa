"""What a deployed server must serve from itself (no CDN): the API docs' Swagger UI assets, under the
site's Content-Security-Policy, and /favicon.ico. Shared by the embedded and the distributed tests."""

from __future__ import annotations

import re

import httpx


def check_offline_assets(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        docs = client.get("/api/v1/docs")
        assert docs.status_code == 200 and "script-src 'self'" in docs.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="(/static/ninja/[^"]+)"', docs.text)
        names = {asset.split("/")[-1].split(".")[0] for asset in assets}
        assert names >= {"swagger-ui-bundle", "swagger-ui-init", "swagger-ui"}, assets
        assert "cdn" not in docs.text.lower() and "<script>" not in docs.text
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        icon = client.get("/favicon.ico")
        assert icon.status_code == 301
        target = client.get(icon.headers["location"])
        assert target.status_code == 200 and target.headers["content-type"].startswith("image/svg")
