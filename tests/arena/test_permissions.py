"""Staff permissions: being staff opens the door, a Django permission decides what is behind it.

A user with ``is_staff`` and no permission at all (403 on the campaign admin) must not pause or
close a campaign, exclude voters, start an export (one with excluded voters included, say),
download one or list them. The walk takes every staff URL of the project from the real URL
configuration (everything under /staff/, /admin/ and the exports API), fills each with a real
object, and expects **403** for such a user, apart from the admin's own pages that show nothing of
the data (index, password change, ...). Then each guarded page is asked again by a staff user with
exactly the permission it needs (success) and by one with every other staff permission (403).

The rule itself lives in ``arena/permissions.py``; the table here is the independent statement of
it, so a new staff URL without an entry fails the walk.
"""

from __future__ import annotations

import itertools

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from arena.exports import jobs
from arena.exports.models import ExportJob
from arena.judges import actions as judge_actions
from arena.judges.models import Judge
from arena.models import (
    Admission,
    Campaign,
    GenerationUsage,
    GoldBattle,
    Invite,
    ModelEntry,
    Ranking,
    RefusedPrompt,
    Voter,
)
from arena.services import ratelimit
from tests.arena.exports.test_exports import add_vote
from tests.arena.test_urls_authz import ADMIN_MODEL_ROUTE, fill, outcome, walk
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

STAFF_PREFIXES = ("staff/", "admin/", "api/v1/exports", "api/v1/judges")

# The admin's own pages, which show no data: what a staff user without any permission gets there.
ADMIN_OWN = {
    ("admin/login/", "admin-login"): "redirect",  # already logged in
    ("admin/login/", "admin:login"): "redirect",
    ("admin/", "admin:index"): 200,  # "You don't have permission to view or edit anything."
    ("admin/logout/", "admin:logout"): 405,  # takes a POST
    ("admin/password_change/", "admin:password_change"): 200,  # their own password
    ("admin/password_change/done/", "admin:password_change_done"): 200,
    ("admin/jsi18n/", "admin:jsi18n"): 200,
    ("admin/r/<path:content_type_id>/<path:object_id>/", "admin:view_on_site"): 404,
    ("admin/^(?P<app_label>auth|arena|exports|judges)/$", "admin:app_list"): 404,  # an app with nothing they may see
    ("admin/(?P<url>.*)$", "admin:"): 404,
}

# Every staff page beyond the admin's per-model pages: the permissions that open it (any one of
# them) and what a holder gets. The admin's model pages need Django's own view/add/change/delete.
EXPORT = ("exports.export_data",)
GUARDED = {
    "arena:dashboard": (("arena.view_campaign", "arena.change_campaign"), 200),
    "arena:quality": (("arena.view_campaign", "arena.change_campaign"), 200),
    "arena:set-status": (("arena.change_campaign",), "redirect"),
    "arena:exclude-voter": (("arena.change_voter",), "redirect"),
    "exports:download": (EXPORT, 200),
    "api:start_export": (EXPORT, 202),
    "api:list_exports": (EXPORT, 200),
    "api:get_export": (EXPORT, 200),
    "api:export_download": (EXPORT, 200),
    "admin:exports_exportjob_choose": (EXPORT, 200),
    "admin:exports_campaign_export": (EXPORT, 200),
    "admin:arena_campaign_import": (("arena.change_campaign",), 200),
    "admin:arena_campaign_generation": (("arena.view_campaign", "arena.change_campaign"), 200),
    "api:judges_run": (("judges.change_judge",), 202),
    "api:judges_progress": (("judges.view_judge", "judges.change_judge"), 200),
    "api:judges_agreement": (("judges.view_judge", "judges.change_judge"), 200),
    "api:judges_leaderboard": (("judges.view_judge", "judges.change_judge"), 200),
}
_serial = itertools.count()
STAFF_PERMISSIONS = sorted({perm for perms, _ in GUARDED.values() for perm in perms} | {"arena.view_voter"})


def staff_with(django_user_model, *perms: str, name: str = "") -> Client:
    """A logged-in staff user (not a superuser) holding exactly these permissions."""
    user = django_user_model.objects.create_user(name or f"staff-{next(_serial)}", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db, settings, tmp_path, django_user_model):
    """An active campaign with one vote and its voter, a finished export job, an object of every admin model."""
    settings.ARENA_EXPORT_DIR = tmp_path / "exports"
    cache.clear()
    ratelimit.reset()
    campaign = make_campaign(slug="pub", models=("P1", "P2", "P3"), prompts=3, dimensions=("helpfulness",))
    Group.objects.create(name="reviewers")
    voter = Voter.objects.create()
    prompt = campaign.prompts.first()
    add_vote(campaign, voter, prompt, "P1", "P2", "left")  # written directly: a battle, its vote, its item
    first, second = prompt.responses.all()[:2]
    GoldBattle.objects.create(campaign=campaign, prompt=prompt, first=first, second=second, expected="tie")
    Ranking.objects.create(campaign=campaign, voter=voter, prompt=prompt, shown=[first.pk, second.pk])
    invite = Invite.objects.create(campaign=campaign, label="team")
    Admission.objects.create(campaign=campaign, voter=voter, invite=invite)
    referee = ModelEntry.objects.create(name="Referee", backend="static", backend_settings={"text": "[[C]]"})
    judge_actions.start([Judge.objects.create(campaign=campaign, model=referee)], limit=1)  # a judge and a verdict
    RefusedPrompt.objects.create(campaign=campaign, text="Which model are you?", reason="asks", moderator="rules")
    GenerationUsage.objects.create(campaign=campaign, model=campaign.contenders.first(), day=timezone.now().date())
    job = jobs.run_job(ExportJob.objects.create(campaign=campaign, format="battles-jsonl").pk)
    assert job.status == ExportJob.Status.DONE and job.rows_written == 1
    values = {
        "slug": "pub",
        "job_id": job.pk,
        "campaign_id": campaign.pk,
        "model_id": campaign.contenders.first().pk,
        "app_label": "arena",
        "url": "no-such-admin-page/",
        "content_type_id": ContentType.objects.get_for_model(Campaign).pk,
        "object_id": campaign.pk,
        "id": django_user_model.objects.create_user("someone").pk,  # whose password the admin would change
    }
    return {"values": values, "voter": voter, "campaign": campaign, "job": job}


def staff_urls(values: dict) -> list[tuple[str, str, str]]:
    """(route, url name, path) of every staff URL, with real objects in the path."""
    found = []
    for route, name in walk(get_resolver().url_patterns):
        if not route.startswith(STAFF_PREFIXES):
            continue
        match = ADMIN_MODEL_ROUTE.match(route)
        object_id = values["object_id"]
        if match and "object_id" in route:
            first = apps.get_model(match["app"], match["model"])._default_manager.order_by("pk").first()
            object_id = first.pk if first is not None else "0"
        found.append((route, name, fill(route, {**values, "object_id": object_id})))
    return found


def ask(client: Client, name: str, path: str, world: dict):
    """The request an attacker would send: pause the campaign, exclude the voter, export everything."""
    if name == "arena:set-status":
        return client.post(path, {"status": "paused"})
    if name == "arena:exclude-voter":
        return client.post(path, {"voter": world["voter"].public_id})
    if name == "api:judges_run":
        return client.post(path, {"campaign": "pub", "limit": 1}, content_type="application/json")
    if name == "api:start_export":
        body = {"campaign": "pub", "format": "battles-jsonl", "include_excluded": True, "include_flagged": True}
        return client.post(path, body, content_type="application/json")
    return client.get(path)


def expected_without_permissions(route: str, name: str):
    if (route, name) in ADMIN_OWN:
        return ADMIN_OWN[(route, name)]
    match = ADMIN_MODEL_ROUTE.match(route)
    if match and match["page"] == "<path:object_id>/":
        return "redirect"  # the old-style object URL redirects to the change page, which is 403
    return 403


def test_a_staff_user_without_permissions_gets_403_on_every_staff_url(world, django_user_model):
    nobody = staff_with(django_user_model, name="no-permissions")
    urls = staff_urls(world["values"])
    problems, answered = [], {}
    for route, name, path in urls:
        response = ask(nobody, name, path, world)
        got = outcome(response)
        answered[path] = got
        want = expected_without_permissions(route, name)
        if got != want:
            problems.append(f"{name or route} {path}: {got}, expected {want}")
    print(f"{len(urls)} staff URLs walked; {sum(1 for g in answered.values() if g == 403)} answered 403")
    assert not problems, f"{len(problems)} of {len(urls)} staff URLs:\n" + "\n".join(problems)
    assert len(urls) >= 100  # the walk really covered the admin
    # Nothing the walk sent changed anything.
    assert Campaign.objects.get(slug="pub").status == "active"
    assert Voter.objects.get().excluded is False
    assert ExportJob.objects.count() == 1


def test_every_guarded_staff_page_opens_with_its_permission_and_only_with_it(world, django_user_model):
    urls = {name: path for _route, name, path in staff_urls(world["values"])}
    assert set(GUARDED) <= set(urls)
    problems = []
    for name, (perms, success) in GUARDED.items():
        path = urls[name]
        others = [p for p in STAFF_PERMISSIONS if p not in perms]
        got = outcome(ask(staff_with(django_user_model, *others), name, path, world))
        if got != 403:
            problems.append(f"{name} with every other staff permission: {got}, expected 403")
        for perm in perms:
            got = outcome(ask(staff_with(django_user_model, perm), name, path, world))
            if got != success:
                problems.append(f"{name} with {perm}: {got}, expected {success}")
    assert not problems, "\n".join(problems)
    # The holders really did it.
    assert Campaign.objects.get(slug="pub").status == "paused"
    assert Voter.objects.get().excluded is True
    assert ExportJob.objects.filter(filters__include_excluded=True).count() == 1


def test_every_admin_list_opens_with_its_view_permission(world, django_user_model):
    problems = []
    for route, name, path in staff_urls(world["values"]):
        match = ADMIN_MODEL_ROUTE.match(route)
        if not match or not name.endswith("_changelist"):
            continue
        perm = f"{match['app']}.view_{match['model']}"
        got = outcome(staff_with(django_user_model, perm).get(path))
        if got != 200:
            problems.append(f"{path} with {perm}: {got}")
    assert not problems, "\n".join(problems)


def test_the_admin_export_page_starts_no_export_without_the_export_permission(world, django_user_model):
    url = f"/admin/exports/exportjob/campaign/{world['campaign'].pk}/"
    form = {
        "format": "battles-jsonl",
        "include_excluded": "on",
        "include_flagged": "on",
        "min_votes": "0",
        "margin": "none",
    }
    for perms in ((), ("arena.change_campaign", "exports.view_exportjob")):
        assert staff_with(django_user_model, *perms).post(url, form).status_code == 403
    assert ExportJob.objects.count() == 1
    assert staff_with(django_user_model, *EXPORT).post(url, form).status_code == 302
    assert ExportJob.objects.filter(filters__include_excluded=True).count() == 1


def test_campaign_status_actions_need_the_change_permission(world, django_user_model):
    action = {"action": "make_paused", "_selected_action": [world["campaign"].pk]}
    viewer = staff_with(django_user_model, "arena.view_campaign")
    assert viewer.get("/admin/arena/campaign/").status_code == 200
    viewer.post("/admin/arena/campaign/", {**action, "action": "make_closed"})
    viewer.post("/admin/arena/campaign/", action)
    assert Campaign.objects.get(slug="pub").status == "active"
    staff_with(django_user_model, "arena.change_campaign").post("/admin/arena/campaign/", action)
    assert Campaign.objects.get(slug="pub").status == "paused"


def test_gold_battle_actions_need_the_change_permission(world, django_user_model):
    gold = GoldBattle.objects.get()
    action = {"action": "deactivate", "_selected_action": [gold.pk]}
    viewer = staff_with(django_user_model, "arena.view_goldbattle")
    assert viewer.get("/admin/arena/goldbattle/").status_code == 200
    viewer.post("/admin/arena/goldbattle/", action)
    assert GoldBattle.objects.get().is_active is True
    staff_with(django_user_model, "arena.change_goldbattle").post("/admin/arena/goldbattle/", action)
    assert GoldBattle.objects.get().is_active is False


def test_the_dashboard_offers_only_what_its_reader_may_do(world, django_user_model):
    page = staff_with(django_user_model, "arena.view_campaign").get("/staff/c/pub/").content.decode()
    assert 'name="status"' not in page
    page = staff_with(django_user_model, "arena.change_campaign").get("/staff/c/pub/").content.decode()
    assert 'name="status" value="paused"' in page


def test_draft_campaigns_are_shown_only_to_staff_who_may_view_campaigns(db, django_user_model):
    make_campaign(slug="draft", status=Campaign.Status.DRAFT)
    bare = staff_with(django_user_model, name="bare")
    viewer = staff_with(django_user_model, "arena.view_campaign", name="viewer")
    for path in ("/c/draft/", "/c/draft/leaderboard/", "/api/v1/campaigns/draft"):
        assert bare.get(path).status_code == 404, path  # staff, but not allowed to look at campaigns
        assert viewer.get(path).status_code == 200, path
