"""Authorisation: every URL pattern of the project, as anonymous, voter, logged-in user and staff.

The walk iterates the real URL configuration (``get_resolver().url_patterns``, recursively), fills
each path parameter with a real object (a campaign slug, ANOTHER voter's battle id, an export job,
an admin object) and checks the status against an explicit table. A new URL without an entry in
the table fails the test: whoever adds a page must say who may see it.

Roles: ``anon`` (no cookie at all), ``voter`` (an anonymous browser with its voter cookie),
``member`` (a logged-in user who is not staff) and ``staff`` (a superuser).

Expectations: an HTTP status, or ``login`` for a redirect to the admin login page, or ``redirect``
for a redirect elsewhere. Beyond the table, two rules hold for every pattern: nothing under
/admin/, /staff/ or the exports API is ever 200 for a non-staff role, and nothing is a 500.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from arena.exports.models import ExportJob
from arena.judges import actions as judge_actions
from arena.judges.models import Judge
from arena.models import (
    Admission,
    Battle,
    Campaign,
    GenerationUsage,
    GoldBattle,
    Invite,
    ModelEntry,
    Ranking,
    RefusedPrompt,
    Vote,
    Voter,
)
from arena.services import ratelimit
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

ROLES = ("anon", "voter", "member", "staff")
A = {role: 200 for role in ROLES}  # anyone


def only_staff(staff, non_staff="login", member=None):
    return {"anon": non_staff, "voter": non_staff, "member": member or non_staff, "staff": staff}


def api_staff(staff):
    return {"anon": 401, "voter": 401, "member": 403, "staff": staff}


# (route, url name) -> (method, expected per role[, path parameter overrides])
EXPECTED: dict[tuple[str, str], tuple] = {
    ("", "arena:home"): ("GET", A),
    ("c/<slug:slug>/", "arena:campaign"): ("GET", A),
    ("c/<slug:slug>/vote/", "arena:next"): ("GET", A),
    # Another voter's battle: missing, not forbidden, for everyone (staff use the admin).
    ("b/<str:battle_id>/", "arena:battle"): ("GET", {r: 404 for r in ROLES}),
    ("b/<str:battle_id>/vote", "arena:vote"): ("POST", {r: 404 for r in ROLES}),
    ("c/<slug:slug>/b/<str:battle_id>/", "arena:battle-page"): ("GET", {r: 404 for r in ROLES}),
    ("staff/c/<slug:slug>/", "arena:dashboard"): ("GET", only_staff(200)),
    ("staff/c/<slug:slug>/status", "arena:set-status"): ("POST", only_staff("redirect")),
    ("staff/c/<slug:slug>/quality.json", "arena:quality"): ("GET", only_staff(200)),
    ("staff/c/<slug:slug>/exclude", "arena:exclude-voter"): ("POST", only_staff("redirect")),  # staff: no voter named
    ("admin/login/", "admin-login"): ("GET", {"anon": 200, "voter": 200, "member": 200, "staff": "redirect"}),
    ("healthz", "healthz"): ("GET", A),
    ("favicon.ico", "favicon"): ("GET", {r: "redirect" for r in ROLES}),  # to the static icon
    ("api/v1/openapi.json", "api:openapi-json"): ("GET", A),
    ("api/v1/docs", "api:openapi-view"): ("GET", A),
    ("api/v1/", "api:api-root"): ("GET", {r: 404 for r in ROLES}),
    ("api/v1/campaigns", "api:list_campaigns"): ("GET", A),
    ("api/v1/campaigns/<slug>", "api:get_campaign"): ("GET", A),
    ("api/v1/campaigns/<slug>/battles", "api:next_battle"): ("POST", A),
    ("api/v1/battles/<battle_id>", "api:get_battle"): ("GET", {r: 404 for r in ROLES}),
    ("api/v1/battles/<battle_id>/vote", "api:vote"): ("POST", {r: 404 for r in ROLES}),
    ("api/v1/exports", "api:start_export"): ("POST", api_staff(422)),  # staff: an empty body is refused
    ("api/v1/exports", "api:list_exports"): ("GET", api_staff(200)),
    ("api/v1/exports/<job_id>", "api:get_export"): ("GET", api_staff(200)),
    ("api/v1/exports/<job_id>/download", "api:export_download"): ("GET", api_staff(404)),  # not finished yet
    ("api/v1/judges/run", "api:judges_run"): ("POST", api_staff(422)),  # staff: an empty body is refused
    ("api/v1/judges/<slug>/progress", "api:judges_progress"): ("GET", api_staff(200)),
    ("api/v1/judges/<slug>/agreement", "api:judges_agreement"): ("GET", api_staff(200)),
    ("api/v1/judges/<slug>/leaderboard", "api:judges_leaderboard"): ("GET", api_staff(200)),
    ("c/<slug:slug>/leaderboard/", "ratings:leaderboard"): ("GET", A),
    ("c/<slug:slug>/leaderboard.json", "ratings:leaderboard-json"): ("GET", A),
    ("c/<slug:slug>/leaderboard.csv", "ratings:leaderboard-csv"): ("GET", A),
    ("c/<slug:slug>/live/", "arena_live:start"): ("GET", A, {"slug": "live"}),
    ("b/<str:battle_id>/live/", "arena_live:battle"): ("GET", {r: 404 for r in ROLES}),
    ("b/<str:battle_id>/live/turn", "arena_live:turn"): ("POST", {r: 404 for r in ROLES}),
    ("c/<slug:slug>/rank/", "arena_rank:next"): ("GET", A, {"slug": "rank"}),
    ("r/<str:ranking_id>/", "arena_rank:ranking"): ("GET", {r: 404 for r in ROLES}),  # another voter's
    ("r/<str:ranking_id>/submit", "arena_rank:submit"): ("POST", {r: 404 for r in ROLES}),
    ("api/v1/campaigns/<slug>/rankings", "api:next_ranking"): ("POST", A, {"slug": "rank"}),
    ("api/v1/rankings/<ranking_id>", "api:get_ranking"): ("GET", {r: 404 for r in ROLES}),
    ("api/v1/rankings/<ranking_id>/submit", "api:submit_ranking"): ("POST", {r: 404 for r in ROLES}),
    ("staff/exports/<int:job_id>/download", "exports:download"): ("GET", only_staff(404, member=403)),
    # --- the admin beyond the per-model pages (those follow ADMIN_MODEL_PAGES below) ---
    ("admin/", "admin:index"): ("GET", only_staff(200)),
    ("admin/login/", "admin:login"): ("GET", {"anon": 200, "voter": 200, "member": 200, "staff": "redirect"}),
    ("admin/logout/", "admin:logout"): ("GET", only_staff(405, "redirect")),  # takes a POST; others: to /admin/
    ("admin/password_change/", "admin:password_change"): ("GET", only_staff(200)),
    ("admin/password_change/done/", "admin:password_change_done"): ("GET", only_staff(200)),
    ("admin/autocomplete/", "admin:autocomplete"): ("GET", only_staff(403)),  # no field named: refused
    ("admin/jsi18n/", "admin:jsi18n"): ("GET", only_staff(200)),
    ("admin/r/<path:content_type_id>/<path:object_id>/", "admin:view_on_site"): ("GET", only_staff(404)),
    ("admin/^(?P<app_label>auth|arena|exports|judges)/$", "admin:app_list"): ("GET", only_staff(200)),
    ("admin/(?P<url>.*)$", "admin:"): ("GET", only_staff(404)),
    ("admin/auth/user/<id>/password/", "admin:auth_user_password_change"): ("GET", only_staff(200)),
    ("admin/arena/campaign/<int:campaign_id>/generation/", "admin:arena_campaign_generation"): (
        "GET",
        only_staff(200),
    ),
    ("admin/arena/campaign/<int:campaign_id>/import/", "admin:arena_campaign_import"): ("GET", only_staff(200)),
    ("admin/arena/modelentry/<int:model_id>/test/", "admin:arena_modelentry_test"): ("GET", only_staff(200)),
    ("admin/exports/exportjob/new/", "admin:exports_exportjob_choose"): ("GET", only_staff(200)),
    ("admin/exports/exportjob/campaign/<int:campaign_id>/", "admin:exports_campaign_export"): (
        "GET",
        only_staff(200),
    ),
}

# Every ModelAdmin's standard pages: staff only. Keyed by the route after admin/<app>/<model>/.
ADMIN_MODEL_PAGES = {
    "": only_staff(200),  # changelist
    "add/": only_staff({200, 403}),  # 403 where adding is not allowed (votes, battles: evidence)
    "<path:object_id>/history/": only_staff(200),
    "<path:object_id>/delete/": only_staff({200, 403}),
    "<path:object_id>/change/": only_staff(200),
    "<path:object_id>/": only_staff("redirect"),  # old-style URL, redirects to .../change/
}
ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?P<page>|add/|<path:object_id>/(?:\w+/)?)$")
STAFF_ONLY_PREFIXES = ("admin/", "staff/", "api/v1/exports", "api/v1/judges")


def walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), namespace + (pattern.name or "")


def expectation(route: str, name: str):
    if (route, name) in EXPECTED:
        method, expected, *overrides = EXPECTED[(route, name)]
        return method, expected, overrides[0] if overrides else {}
    match = ADMIN_MODEL_ROUTE.match(route)
    if match and match["page"] in ADMIN_MODEL_PAGES:
        return "GET", ADMIN_MODEL_PAGES[match["page"]], {}
    return None


PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>|\(\?P<(?P<re_name>\w+)>[^)]*\)")


def fill(route: str, values: dict[str, str]) -> str:
    """The route with every parameter replaced by a real value (and regex anchors dropped)."""
    path = PARAM.sub(lambda m: str(values[m["name"] or m["re_name"]]), route)
    return "/" + path.replace("^", "").replace("$", "")


@pytest.fixture
def world(db, django_user_model):
    """A public and a live campaign, two voters with battles, a member, a staff user, an export job."""
    cache.clear()
    ratelimit.reset()
    public = make_campaign(slug="pub", models=("P1", "P2", "P3"), prompts=3, dimensions=("helpfulness",))
    Group.objects.create(name="reviewers")
    live = Campaign.objects.create(slug="live", title="Live", status="active", mode="live")
    live.contenders.set(public.contenders.all())
    make_campaign(slug="rank", models=("P1", "P2", "P3"), prompts=3, task="ranking", ranking_size=3)

    clients = {"voter": Client(), "member": Client(), "staff": Client()}
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True, is_superuser=True)
    member = django_user_model.objects.create_user("member", password="pw")
    clients["staff"].force_login(staff)
    clients["member"].force_login(member)
    for client in clients.values():
        assert client.get("/c/pub/vote/").status_code == 200  # each has a voter and an open battle

    bob = Client()
    bob_battle = bob.post("/api/v1/campaigns/pub/battles").json()["id"]
    bob_ranking = bob.post("/api/v1/campaigns/rank/rankings").json()["id"]
    other = Client()  # a voted battle of a third voter, so the admin has a Vote to show
    voted = other.post("/api/v1/campaigns/pub/battles").json()["id"]
    assert other.post(f"/b/{voted}/vote", {"verdict": "left"}).status_code == 302
    from arena.leaderboards.snapshots import compute_snapshots

    compute_snapshots(public)
    invite = Invite.objects.create(campaign=public, label="x")
    first, second = public.prompts.first().responses.all()[:2]
    GoldBattle.objects.create(campaign=public, prompt=first.prompt, first=first, second=second, expected="tie")
    Admission.objects.create(campaign=public, voter=Voter.objects.first(), invite=invite)
    job = ExportJob.objects.create(campaign=public, format="battles-jsonl")
    RefusedPrompt.objects.create(campaign=live, text="Which model are you?", reason="asks", moderator="rules")
    GenerationUsage.objects.create(campaign=public, model=public.contenders.first(), day=timezone.now().date())
    referee = ModelEntry.objects.create(name="Referee", backend="static", backend_settings={"text": "[[C]]"})
    judge_actions.start([Judge.objects.create(campaign=public, model=referee)], limit=1)  # a judge and a verdict
    values = {
        "slug": "pub",
        "battle_id": bob_battle,
        "ranking_id": bob_ranking,
        "job_id": job.pk,
        "campaign_id": public.pk,
        "model_id": public.contenders.first().pk,
        "app_label": "arena",
        "url": "no-such-admin-page/",
        "content_type_id": ContentType.objects.get_for_model(Campaign).pk,
        "object_id": public.pk,
        "id": staff.pk,
    }
    return {"clients": clients, "values": values, "bob_battle": bob_battle, "public": public}


def _object_id(route: str, default):
    match = ADMIN_MODEL_ROUTE.match(route)
    if not match or "object_id" not in route:
        return default
    model = apps.get_model(match["app"], match["model"])
    first = model._default_manager.order_by("pk").first()
    return first.pk if first is not None else "0"


def outcome(response) -> int | str:
    if response.status_code in (301, 302):
        return "login" if response["Location"].startswith("/admin/login/") else "redirect"
    return response.status_code


def test_every_url_pattern_has_an_expectation_and_meets_it(world):
    problems, checked = [], 0
    for route, name in walk(get_resolver().url_patterns):
        found = expectation(route, name)
        if found is None:
            problems.append(f"no expectation for {route!r} ({name}): add it to EXPECTED in {__name__}")
            continue
        method, expected, overrides = found
        values = {**world["values"], **overrides, "object_id": _object_id(route, world["values"]["object_id"])}
        path = fill(route, values)
        for role in ROLES:
            client = Client() if role == "anon" else world["clients"][role]
            # Non-staff try to pause the campaign; staff send an unknown status, which changes nothing.
            status = "bogus" if role == "staff" else "paused"
            data = (
                {"status": status, "verdict": "left", "prompt": "hello", "order": "A B C"} if method == "POST" else None
            )
            if method == "POST" and name.startswith("api:"):
                body = {"api:vote": {"verdict": "left"}, "api:submit_ranking": {"order": ["A", "B", "C"]}}.get(name, {})
                response = client.post(path, body, content_type="application/json")
            elif method == "POST":
                response = client.post(path, data)
            else:
                response = client.get(path)
            got = outcome(response)
            want = expected[role]
            checked += 1
            if not (got in want if isinstance(want, set) else got == want):
                problems.append(f"{method} {path} ({name}) as {role}: {got}, expected {want}")
            if role != "staff" and route.startswith(STAFF_ONLY_PREFIXES) and route != "admin/login/":
                assert response.status_code != 200, f"{path} is 200 for {role}"
            assert response.status_code < 500, f"{path} as {role}: {response.status_code}"
    assert not problems, "\n".join(problems)
    assert checked > 200  # the walk really covered the project (every admin page included)
    # Nothing the walk did changed another voter's battle or a campaign's status.
    assert Battle.objects.get(pk=world["bob_battle"]).status == "open"
    assert not Vote.objects.filter(battle_id=world["bob_battle"]).exists()
    assert Ranking.objects.get(pk=world["values"]["ranking_id"]).status == "open"
    assert Campaign.objects.get(slug="pub").status == "active"


def test_the_table_has_no_stale_entries():
    routes = set(walk(get_resolver().url_patterns))
    assert [key for key in EXPECTED if key not in routes] == []


# --- finer points the walk cannot express ---------------------------------------------------------


@pytest.fixture
def invite_only(db):
    campaign = make_campaign(slug="inv", access=Campaign.Access.INVITE)
    return (
        campaign,
        Invite.objects.create(campaign=campaign, label="team"),
        Invite.objects.create(campaign=campaign, label="gone", revoked=True),
    )


def test_invite_only_campaigns_refuse_voters_without_a_valid_token(invite_only, alice):
    campaign, invite, revoked = invite_only
    assert alice.get("/c/inv/vote/").status_code == 403
    assert alice.post("/api/v1/campaigns/inv/battles").status_code == 403
    for token in ("nonsense", revoked.token, ""):
        alice.get(f"/c/inv/?invite={token}")
        assert alice.get("/c/inv/vote/").status_code == 403, token
    other = make_campaign(slug="other-inv", access=Campaign.Access.INVITE)
    other_invite = Invite.objects.create(campaign=other)
    assert alice.get(f"/c/inv/?invite={other_invite.token}").status_code == 403  # another campaign's token
    assert alice.get(f"/c/inv/?invite={invite.token}").status_code == 302
    assert alice.get("/c/inv/vote/").status_code == 200
    assert Admission.objects.filter(campaign=campaign).count() == 1


def test_revoking_an_invite_shuts_out_the_voters_it_admitted(invite_only, alice, bob):
    campaign, invite, _ = invite_only
    for voter in (alice, bob):
        assert voter.get(f"/c/inv/?invite={invite.token}").status_code == 302
    page = alice.get("/c/inv/vote/")
    assert page.status_code == 200
    battle_id = re.search(r'action="/b/([^/]+)/vote"', page.content.decode()).group(1)
    invite.revoked = True
    invite.save(update_fields=["revoked"])

    assert alice.post(f"/b/{battle_id}/vote", {"verdict": "left"}).status_code == 403  # the open battle too
    assert bob.get("/c/inv/vote/").status_code == 403
    assert alice.post("/api/v1/campaigns/inv/battles").status_code == 403
    assert not Vote.objects.filter(campaign=campaign).exists()
    # A new invitation lets a voter back in.
    fresh = Invite.objects.create(campaign=campaign, label="again")
    assert alice.get(f"/c/inv/?invite={fresh.token}").status_code == 302
    assert alice.post(f"/b/{battle_id}/vote", {"verdict": "left"}).status_code == 302
    assert Vote.objects.filter(campaign=campaign).count() == 1
    assert Admission.objects.get(voter__votes__isnull=False).invite == fresh
    assert bob.get("/c/inv/vote/").status_code == 403


def test_login_only_campaigns_refuse_anonymous_voters(db, django_user_model, alice):
    make_campaign(slug="members", access=Campaign.Access.LOGIN)
    assert alice.get("/c/members/vote/").status_code == 403
    alice.force_login(django_user_model.objects.create_user("m", password="pw"))
    assert alice.get("/c/members/vote/").status_code == 200


def test_draft_campaigns_are_invisible_to_everyone_but_staff(db, alice, staff_client):
    make_campaign(slug="draft", status=Campaign.Status.DRAFT)
    for path in ("/c/draft/", "/c/draft/vote/", "/c/draft/leaderboard/", "/api/v1/campaigns/draft"):
        assert alice.get(path).status_code == 404, path
        assert staff_client.get(path).status_code == (403 if "vote" in path else 200), path  # seen, not voted on


def test_a_voter_reads_and_votes_on_their_own_battle_only(campaign, alice, bob):
    mine = alice.post(f"/api/v1/campaigns/{campaign.slug}/battles").json()["id"]
    assert alice.get(f"/api/v1/battles/{mine}").status_code == 200
    assert bob.get(f"/api/v1/battles/{mine}").status_code == 404
    assert bob.post(f"/b/{mine}/vote", {"verdict": "right"}).status_code == 404
    assert alice.post(f"/b/{mine}/vote", {"verdict": "left"}).status_code == 302
    assert bob.get(f"/b/{mine}/").status_code == 404  # nor the reveal afterwards
    assert Vote.objects.get(battle_id=mine).verdict == "left"


def test_non_staff_cannot_change_a_campaign_status(campaign, django_user_model):
    member = Client()
    member.force_login(django_user_model.objects.create_user("m", password="pw"))
    for client in (Client(), member):
        client.post(f"/staff/c/{campaign.slug}/status", {"status": "closed"})
    assert Campaign.objects.get(pk=campaign.pk).status == "active"
