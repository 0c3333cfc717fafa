"""Model entries in the admin: backend kinds as choices with their settings documented beside the form,
settings checked on save (secrets only by variable name), and a test that sends one prompt through the
backend (a real local protocol server, and the static backend) and shows the answer or the error."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from arena.models import ModelEntry
from backends.registry import available_kinds
from tests.protocol_server import ProtocolServer

pytestmark = pytest.mark.django_db

KEY_ENV = "ARENA_TEST_ADMIN_KEY"
KEY = "sk-admin-test-7c1d2e"


def form_data(staff_client, **fields) -> dict:
    """The add form's own initial values (whatever fields the model has), then ``fields``."""
    form = staff_client.get(reverse("admin:arena_modelentry_add")).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if name != "created_at" and form[name].value() is not None}
    data = {k: v for k, v in data.items() if v is not False}
    data.update({"name": "Model X", "is_active": "on", "created_at_0": "2026-01-01", "created_at_1": "00:00:00"})
    data.update(fields)
    return data


def add(staff_client, **fields):
    return staff_client.post(reverse("admin:arena_modelentry_add"), form_data(staff_client, **fields))


def test_the_backend_is_a_choice_of_the_registered_kinds_with_each_kinds_settings_beside_it(staff_client):
    page = staff_client.get(reverse("admin:arena_modelentry_add")).content.decode()
    select = page.split('name="backend"', 1)[1].split("</select>", 1)[0]
    assert [f'value="{kind}"' in select for kind in available_kinds()] == [True] * len(available_kinds())
    for kind in available_kinds():
        assert f'id="backend-doc-{kind}"' in page
    text = html.unescape(page)
    assert "``base_url``" in text and "``api_key_env``" in text  # openai
    assert "``model_path``" in text and "``dtype``" in text  # transformers
    assert '"api_key_env": "OPENAI_API_KEY"' in text  # an example names the variable, holds no key


def test_an_unknown_kind_is_refused_by_the_form(staff_client):
    response = add(staff_client, backend="gpt")
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ModelEntry.objects.exists()


@pytest.mark.parametrize(
    ("backend", "settings", "message"),
    [
        ("openai", '{"base_url": "ftp://x", "model": "m"}', "must be an http(s) URL"),
        ("openai", '{"base_url": "http://h/v1"}', "settings.model: is required"),
        ("openai", '{"model": "m", "api_key_env": "sk-live-123"}', "must be the NAME of an environment variable"),
        ("openai", '{"model": "m", "api_key": "sk-live-123"}', "looks like a secret"),
        ("openai", '{"model": "m", "headers": {"Authorization": "Bearer sk-1"}}', "looks like a secret"),
        ("transformers", '{"dtype": "bf16"}', "settings.model_path: is required"),
        ("transformers", '{"model_path": "tiny", "dtype": "float8"}', "settings.dtype: must be one of"),
        ("static", '{"txt": "hi"}', "did you mean"),
    ],
)
def test_settings_are_checked_on_save(staff_client, backend, settings, message):
    response = add(staff_client, backend=backend, backend_settings=settings)
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert not ModelEntry.objects.exists()


def test_good_settings_are_saved(staff_client):
    settings = '{"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "MY_KEY"}'
    assert add(staff_client, backend="openai", backend_settings=settings).status_code == 302
    assert ModelEntry.objects.get().backend_settings["api_key_env"] == "MY_KEY"


def test_testing_a_static_model_shows_its_answer(staff_client):
    entry = ModelEntry.objects.create(name="Echo", backend="static", backend_settings={"text": "Four. <b>bold</b>"})
    url = reverse("admin:arena_modelentry_test", args=[entry.pk])
    assert (
        'class="model-test-link"'
        in staff_client.get(reverse("admin:arena_modelentry_change", args=[entry.pk])).content.decode()
    )
    page = staff_client.post(url, {"prompt": "What is 2+2?"}).content.decode()
    assert '<pre id="model-test-answer">Four. &lt;b&gt;bold&lt;/b&gt;</pre>' in page  # model output is text


def test_testing_an_api_model_sends_one_prompt_and_shows_the_answer(staff_client, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with ProtocolServer(api_key=KEY) as server:
        entry = ModelEntry.objects.create(
            name="Served",
            backend="openai",
            backend_settings={"base_url": server.base_url, "model": "echo", "api_key_env": KEY_ENV, "trust_env": False},
        )
        page = staff_client.post(reverse("admin:arena_modelentry_test", args=[entry.pk]), {"prompt": "hi there"})
        assert "Echo: hi there" in page.content.decode()
        (request,) = server.requests
        assert request.body["max_tokens"] <= 64 and request.body["messages"][-1]["content"] == "hi there"


def test_a_failing_api_model_shows_the_error_without_the_key(staff_client, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with ProtocolServer(api_key=KEY) as server:
        entry = ModelEntry.objects.create(
            name="Broken",
            backend="openai",
            backend_settings={
                "base_url": server.base_url,
                "model": "m?status=401&leak_key=1",
                "api_key_env": KEY_ENV,
                "trust_env": False,
            },
        )
        page = staff_client.post(reverse("admin:arena_modelentry_test", args=[entry.pk]), {"prompt": "hi"})
    text = page.content.decode()
    assert 'id="model-test-error"' in text and "authentication" in text
    assert KEY not in text


def test_an_unreachable_server_is_an_error_within_the_deadline(staff_client):
    entry = ModelEntry.objects.create(
        name="Nowhere",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:9/v1", "model": "m", "trust_env": False},
    )
    text = staff_client.post(reverse("admin:arena_modelentry_test", args=[entry.pk]), {"prompt": "hi"}).content.decode()
    assert 'id="model-test-error"' in text and "connection" in text


def test_the_list_action_reports_each_models_answer(staff_client):
    good = ModelEntry.objects.create(name="Good", backend="static", backend_settings={"text": "Fine."})
    bad = ModelEntry.objects.create(name="Bad", backend="static", backend_settings={"error": "rate_limit"})
    response = staff_client.post(
        reverse("admin:arena_modelentry_changelist"),
        {"action": "test_models", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    shown = sorted(str(m) for m in response.context["messages"])
    assert shown == ["Bad: failed: rate_limit: scripted failure", "Good: answered: Fine."]


def test_testing_needs_the_change_permission(client, django_user_model):
    entry = ModelEntry.objects.create(name="Echo", backend="static")
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(viewer)
    assert client.post(reverse("admin:arena_modelentry_test", args=[entry.pk]), {"prompt": "hi"}).status_code == 403


@pytest.mark.gpu  # needs torch and transformers; a tiny model trained by the test, on CPU
def test_testing_a_local_transformers_model_shows_its_answer(staff_client, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from backends.transformers_local import unload_all
    from tests.tiny_chat_model import build

    build(tmp_path / "tiny", with_template=True)
    entry = ModelEntry.objects.create(
        name="Tiny",
        backend="transformers",
        params={"do_sample": False},
        backend_settings={"model_path": str(tmp_path / "tiny"), "device": "cpu", "dtype": "fp32"},
    )
    try:
        page = staff_client.post(
            reverse("admin:arena_modelentry_test", args=[entry.pk]), {"prompt": "What is two plus two?"}
        )
    finally:
        unload_all()
    assert '<pre id="model-test-answer">Two plus two is four.</pre>' in page.content.decode()


def test_the_try_model_command_prints_the_answer_or_fails_with_the_error(capsys):
    from django.core.management import CommandError, call_command

    ModelEntry.objects.create(name="Echo", backend="static", backend_settings={"text": "Echo: {prompt}"})
    ModelEntry.objects.create(name="Down", backend="static", backend_settings={"error": "server_error"})
    call_command("try_model", "Echo", "--prompt", "hi")
    assert capsys.readouterr().out.strip() == "Echo: hi"
    with pytest.raises(CommandError, match="Down: server_error: scripted failure"):
        call_command("try_model", "Down")
    with pytest.raises(CommandError, match="No model named 'Nobody'"):
        call_command("try_model", "Nobody")
