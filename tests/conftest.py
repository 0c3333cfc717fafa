"""Shared fixtures: a campaign, and voters alice and bob with their own browsers (test clients)."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def campaign(db):
    from tests.factories import make_campaign

    return make_campaign()


@pytest.fixture(autouse=True)
def _fresh_weight_cache():
    """Model weights are cached per process for a few seconds; tests must not see another test's."""
    from django.core.cache import cache

    from arena.services.profiles import forget_profiles

    forget_profiles()
    cache.clear()  # the in-process cache of the test settings; integration tests use their own Redis db


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
