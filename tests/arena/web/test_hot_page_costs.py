"""The hot pages' cheaper equivalents of Django's helpers (arena.web.helpers, arena.services.voters):
each gives what the Django function it stands for gives, under the same settings."""

from __future__ import annotations

import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CsrfViewMiddleware, get_token
from django.test import Client, RequestFactory
from django.urls import reverse, set_script_prefix
from django.utils.cache import add_never_cache_headers
from django.utils.http import parse_http_date
from django.views.decorators.cache import never_cache as django_never_cache

from arena.models import Battle, Voter
from arena.services import voters
from arena.web.helpers import csrf_token, never_cache, next_battle_url


def _request_with_csrf_cookie() -> HttpRequest:
    """A request as CsrfViewMiddleware leaves it for a visitor who has a CSRF cookie."""
    request = RequestFactory().get("/")
    request.COOKIES["csrftoken"] = "a" * 32
    CsrfViewMiddleware(lambda r: HttpResponse()).process_request(request)
    return request


def test_the_csrf_token_is_a_fresh_masking_of_the_cookies_secret_that_django_accepts():
    request = _request_with_csrf_cookie()
    tokens = {csrf_token(request) for _ in range(200)}
    assert len(tokens) == 200  # a new mask every time
    for token in tokens:
        assert len(token) == 64 and set(token) <= set(CSRF_ALLOWED_CHARS)
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True  # the cookie is renewed, as get_token does
    masks = "".join(token[:32] for token in tokens)
    assert set(masks) == set(CSRF_ALLOWED_CHARS)  # 6,400 draws reach every character

    for token in list(tokens)[:20]:  # Django's own check reads each back as the cookie's secret
        post = RequestFactory().post("/", {"csrfmiddlewaretoken": token})
        post.COOKIES["csrftoken"] = "a" * 32
        middleware = CsrfViewMiddleware(lambda r: HttpResponse())
        middleware.process_request(post)
        assert middleware.process_view(post, lambda r: None, (), {}) is None
    forged = RequestFactory().post("/", {"csrfmiddlewaretoken": "c" * 32 + "b" * 32})  # masks "9" * 32
    forged.COOKIES["csrftoken"] = "a" * 32
    middleware = CsrfViewMiddleware(lambda r: HttpResponse())
    middleware.process_request(forged)
    assert middleware.process_view(forged, lambda r: None, (), {}).status_code == 403


def test_without_a_csrf_cookie_the_token_comes_from_django():
    request = RequestFactory().get("/")
    CsrfViewMiddleware(lambda r: HttpResponse()).process_request(request)
    token = csrf_token(request)
    assert len(token) == 64 and len(request.META["CSRF_COOKIE"]) == 32
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True
    assert len(get_token(request)) == 64


@pytest.mark.django_db
def test_the_battle_pages_form_token_passes_the_csrf_check(campaign):
    client = Client(enforce_csrf_checks=True)
    client.get(f"/c/{campaign.slug}/vote/")  # the first page sets the cookie
    page = client.get(f"/c/{campaign.slug}/vote/").content.decode()
    battle_id = re.search(r'action="/b/([^/]+)/vote"', page).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert token != client.cookies["csrftoken"].value  # masked, never the secret itself
    assert client.post(f"/b/{battle_id}/vote", {"verdict": "left", "csrfmiddlewaretoken": token}).status_code == 302
    assert Battle.objects.get(pk=battle_id).status == Battle.Status.VOTED


def test_never_cache_writes_the_headers_djangos_never_cache_writes():
    ours = never_cache(lambda request: HttpResponse("x"))(RequestFactory().get("/"))
    theirs = django_never_cache(lambda request: HttpResponse("x"))(RequestFactory().get("/"))
    assert ours["Cache-Control"] == theirs["Cache-Control"]
    assert abs(parse_http_date(ours["Expires"]) - parse_http_date(theirs["Expires"])) <= 1


def test_never_cache_keeps_a_views_own_directives_as_django_does():
    def view(request):
        response = HttpResponse("x")
        response["Cache-Control"] = "no-transform"
        return response

    expected = HttpResponse("x")
    expected["Cache-Control"] = "no-transform"
    add_never_cache_headers(expected)
    assert never_cache(view)(RequestFactory().get("/"))["Cache-Control"] == expected["Cache-Control"]
    assert "no-transform" in expected["Cache-Control"]


def test_the_next_battle_url_is_reversed_under_the_scripts_prefix():
    assert next_battle_url("demo") == reverse("arena:next", args=["demo"]) == "/c/demo/vote/"
    set_script_prefix("/arena/")
    try:
        assert next_battle_url("demo") == "/arena/c/demo/vote/"
    finally:
        set_script_prefix("/")


def _voter_cookie(voter: Voter) -> str:
    response = HttpResponse()
    voters.remember_voter(response, voter)
    return response.cookies[voters.COOKIE_NAME].value


def _cookie_value(raw: str) -> str | None:
    request = RequestFactory().get("/")
    request.COOKIES[voters.COOKIE_NAME] = raw
    return voters.cookie_value(request)


def _djangos_reading(raw: str) -> str | None:
    request = RequestFactory().get("/")
    request.COOKIES[voters.COOKIE_NAME] = raw
    return request.get_signed_cookie(voters.COOKIE_NAME, default=None, salt=voters.COOKIE_SALT)


def test_a_remembered_voter_cookie_reads_as_django_reads_it(settings):
    raw = _voter_cookie(Voter(pk=41, public_id="alice"))
    assert _cookie_value(raw) == _cookie_value(raw) == _djangos_reading(raw) == f"alice:{voters.conceal_id(41)}"
    for forged in (raw[:-1] + ("A" if raw[-1] != "A" else "B"), "alice:" + voters.conceal_id(42), ""):
        assert _cookie_value(forged) is None and _djangos_reading(forged) is None


def test_a_remembered_voter_cookie_is_read_again_under_a_new_secret(settings):
    settings.SECRET_KEY = "first secret, long enough for the test of cookies"
    raw = _voter_cookie(Voter(pk=7, public_id="bob"))
    assert _cookie_value(raw) is not None
    settings.SECRET_KEY = "second secret, long enough for the test of cookies"
    assert _cookie_value(raw) is None  # rotated away: the verdict under the first secret is not reused
    settings.SECRET_KEY_FALLBACKS = ["first secret, long enough for the test of cookies"]
    assert _cookie_value(raw) == _djangos_reading(raw) is not None  # a fallback key still reads it


def test_a_remembered_address_hash_follows_the_salt(settings):
    settings.ARENA_IP_SALT = "salt one"
    first = voters.hash_ip("192.0.2.1")
    assert voters.hash_ip("192.0.2.1") == first and voters.hash_ip("192.0.2.2") != first
    settings.ARENA_IP_SALT = "salt two"
    assert voters.hash_ip("192.0.2.1") != first
    assert voters.hash_ip("") == ""
