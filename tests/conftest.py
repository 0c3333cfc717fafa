"""Shared fixtures: a campaign, and voters alice and bob with their own browsers (test clients)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import modes, stack
from tests.protocol_server import ProtocolServer


@pytest.hookimpl(trylast=True)  # after the folders' hooks have marked their tests
def pytest_collection_modifyitems(config, items):
    modes.select(config, items)


@pytest.fixture
def campaign(db):
    from tests.factories import make_campaign

    return make_campaign()


@pytest.fixture(autouse=True)
def _fresh_weight_cache():
    """Model weights are cached per process for a few seconds; tests must not see another test's."""
    from django.core.cache import cache

    from arena.services import quality_state
    from arena.services.profiles import forget_profiles

    forget_profiles()
    cache.clear()  # the in-process cache of the test settings; integration tests use their own Redis db
    quality_state.forget()  # a worker's in-memory voter-quality states (ids are reused after a rollback)


@pytest.fixture
def alice(db) -> Client:
    return Client()


@pytest.fixture
def bob(db) -> Client:
    return Client()


@pytest.fixture
def staff_client(db, django_user_model) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """Static files collected once, as the production image does at build time."""
    root = tmp_path_factory.mktemp("static")
    env = stack.base_env("sqlite:///:memory:", redis_url=None, STATIC_ROOT=str(root))
    stack.manage(env, "collectstatic", "--noinput", "-v", "0")
    return root


@pytest.fixture
def processes(tmp_path):
    """Start processes with processes.web(env) (uvicorn), processes.granian(env), processes.worker(env)
    and processes.beat(env); all stopped at the end."""

    class Processes:
        def __init__(self):
            self.started: list[stack.Process] = []

        def web(self, env, **kw):
            process, url = stack.start_web(env, tmp_path, **kw)
            self.started.append(process)
            return url

        def granian(self, env, **kw):
            process, url = stack.start_granian(env, tmp_path, **kw)
            self.started.append(process)
            return url

        def worker(self, env, **kw):
            process = stack.start_worker(env, tmp_path, **kw)
            self.started.append(process)
            return process

        def beat(self, env, **kw):
            process = stack.start_beat(env, tmp_path, **kw)
            self.started.append(process)
            return process

    procs = Processes()
    yield procs
    for process in procs.started:
        process.stop()
        # Shown by pytest only when the test failed.
        print(f"----- {process.name} log (last 4000 chars) -----\n{process.log()[-4000:]}")


@pytest.fixture(scope="module")
def server():
    """The models: a real OpenAI- and Anthropic-compatible HTTP server on 127.0.0.1
    (tests/protocol_server.py), one per test module; ``models_api`` resets its scripts per test."""
    with ProtocolServer() as server:
        yield server


@pytest.fixture
def models_api(server):
    """The protocol server with its scripts and counters reset."""
    server.reset()
    return server


@pytest.fixture
def model_api(models_api, settings):
    """The protocol server for prompt-set generation: task retries wait in place only briefly (tasks
    run in-process in these tests)."""
    settings.ARENA_GENERATION_RETRY_BACKOFF = 0.01
    return models_api
