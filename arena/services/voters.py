"""Who is voting: anonymous browsers keep a signed cookie; logged-in users are linked to a voter.

The raw IP address is never stored, only an HMAC of it with the ARENA_IP_SALT secret.

The cookie is "public_id:token": the signature vouches for both, so a request knows its voter without
a query. The token is the voter's row id under a keyed permutation (a 4-round Feistel network over 64
bits whose rounds are HMAC-SHA256 with the SECRET_KEY): the cookie tells nothing of how many voters
came before, and a token cannot be turned back into an id without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse

from arena.core.errors import NotFound
from arena.models import Voter

COOKIE_NAME = "arena_voter"
COOKIE_SALT = "arena.voter"
COOKIE_MAX_AGE = 365 * 24 * 3600


def client_ip(request: HttpRequest) -> str:
    if settings.ARENA_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "") or ""


def hash_ip(ip: str) -> str:
    """The address's HMAC under ARENA_IP_SALT ("" for none); remembered per process for the addresses
    seen lately: every rate-limited request asks."""
    return _hashed_ip(ip, settings.ARENA_IP_SALT) if ip else ""


@lru_cache(maxsize=16384)
def _hashed_ip(ip: str, salt: str) -> str:
    return hmac.new(salt.encode(), ip.encode(), hashlib.sha256).hexdigest()


def voter_from_cookie(request: HttpRequest) -> Voter | None:
    """The voter for this request if it already has one (never creates)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Voter.objects.filter(user=user).first()
    value = cookie_value(request)
    return voter_from_cookie_value(value) if value else None


def cookie_value(request: HttpRequest) -> str | None:
    """The verified value of the voter cookie ("public_id:token"), or None if absent or forged.

    Verified once per request (the rate limits and the view both ask): checking the signature
    derives a key and computes an HMAC each time.
    """
    try:
        return request._arena_voter_cookie
    except AttributeError:
        raw = request.COOKIES.get(COOKIE_NAME)
        value = None if raw is None else _verified_cookie(raw, *_signing_settings())
        request._arena_voter_cookie = value
        return value


def _signing_settings() -> tuple[str, tuple[str, ...], str, bool]:
    legacy = getattr(settings, "SIGNED_COOKIE_LEGACY_SALT_FALLBACK", False)
    return settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS), settings.SIGNING_BACKEND, legacy


@lru_cache(maxsize=16384)  # about 3 MB
def _verified_cookie(raw: str, *signing_settings: object) -> str | None:
    """What ``get_signed_cookie`` gives for this cookie, remembered per process for the voters seen
    lately (it costs 29 us a request otherwise: key derivations and an HMAC). Keyed by the signing
    settings, so a rotated SECRET_KEY never reads a verdict made under the old one; the cookie is
    signed without a max age, so the verdict does not change with time."""
    carrier = HttpRequest()
    carrier.COOKIES = {COOKIE_NAME: raw}
    return carrier.get_signed_cookie(COOKIE_NAME, default=None, salt=COOKIE_SALT)


def voter_from_cookie_value(value: str) -> Voter | None:
    """The voter named by a verified cookie value "public_id:token", without a query: the signature
    vouches for both. (A voter deleted since is caught where it is used: see StaleVoterMiddleware.)
    Cookies of earlier releases carry the id itself, or only the public id (looked up)."""
    public_id, _, token = value.partition(":")
    pk = reveal_id(token) if len(token) == TOKEN_CHARS else int(token) if token.isdigit() else None
    if pk is not None:
        return Voter(pk=pk, public_id=public_id)
    return voter_by_public_id(public_id)


TOKEN_CHARS = 16  # 64 bits, hex
_ROUNDS = 4
_HALF = 0xFFFFFFFF


def _round(key: bytes, i: int, half: int) -> int:
    digest = hmac.new(key, b"arena.voter.id/%d/%d" % (i, half), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def conceal_id(pk: int) -> str:
    """The voter's id as 16 hex characters that reveal neither it nor its order (keyed permutation)."""
    key = settings.SECRET_KEY.encode()
    left, right = (pk >> 32) & _HALF, pk & _HALF
    for i in range(_ROUNDS):
        left, right = right, left ^ _round(key, i, right)
    return f"{(left << 32) | right:016x}"


def reveal_id(token: str) -> int | None:
    """The id that `conceal_id` turned into ``token``; None for anything else. Remembered per process
    for the voters seen lately: every request of a voter asks (four HMACs each time)."""
    return _revealed(token, settings.SECRET_KEY)


@lru_cache(maxsize=16384)  # about 3 MB
def _revealed(token: str, secret: str) -> int | None:
    try:
        value = int(token, 16)
    except ValueError:
        return None
    key = secret.encode()
    left, right = value >> 32, value & _HALF
    for i in reversed(range(_ROUNDS)):
        left, right = right ^ _round(key, i, left), left
    return (left << 32) | right


def cookie_public_id(value: str) -> str:
    return value.partition(":")[0]


def battle_owner(request: HttpRequest) -> Voter:
    """The voter acting on a battle; a request without one sees "no such battle", like a stranger."""
    voter = voter_from_cookie(request)
    if voter is None:
        raise NotFound("No such battle.")
    return voter


def voter_by_public_id(public_id: str) -> Voter | None:
    """A light Voter (id and public_id only)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM arena_voter WHERE public_id = %s", [public_id])
        row = cursor.fetchone()
    return None if row is None else Voter(pk=row[0], public_id=public_id)


def get_or_create_voter(request: HttpRequest) -> tuple[Voter, bool]:
    """The voter for this request, created on first use. Returns (voter, created)."""
    voter = voter_from_cookie(request)
    if voter is not None:
        return voter, False
    user = getattr(request, "user", None)
    ip_hash = hash_ip(client_ip(request))
    if user is not None and user.is_authenticated:
        try:
            with transaction.atomic():
                return Voter.objects.create(user=user, ip_hash=ip_hash), True
        except IntegrityError:  # two first requests at once
            return Voter.objects.get(user=user), False
    return Voter.objects.create(ip_hash=ip_hash), True


def remember_voter(response: HttpResponse, voter: Voter) -> None:
    if voter.user_id is None:
        response.set_signed_cookie(
            COOKIE_NAME,
            f"{voter.public_id}:{conceal_id(voter.pk)}",
            salt=COOKIE_SALT,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )


def forget_voter(response: HttpResponse) -> None:
    response.delete_cookie(COOKIE_NAME, samesite="Lax")


def is_stale_voter_error(error: BaseException) -> bool:
    """A write failed because the voter of the request's cookie no longer exists (staff deleted it)."""
    cause = error.__cause__
    constraint = getattr(getattr(cause, "diag", None), "constraint_name", None) or ""
    if constraint:
        return constraint.endswith("_fk_arena_voter_id")
    return "FOREIGN KEY constraint failed" in str(error)  # SQLite does not name the constraint
