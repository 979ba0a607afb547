"""Authentication and authorisation: Argon2id passwords, hashed API tokens,
database- or Redis-backed login throttling, and permission checks."""

from __future__ import annotations

import functools
import hashlib
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import g, has_request_context, request
from flask_login import current_user as web_user
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from core.db import db, is_postgres, utcnow
from core.errors import Conflict, PermissionDenied, TooManyRequests, Unauthorized, ValidationError
from core.models import ApiToken, LoginAttempt, User, UserRole
from core.state import dovetail

F = TypeVar("F", bound=Callable[..., Any])

SCOPE_RANK = {"own": 0, "team": 1, "all": 2}
INVALID_LOGIN = "Invalid username or password."


def hasher() -> PasswordHasher:
    sec = dovetail().config.security
    return PasswordHasher(time_cost=sec["argon2_time_cost"], memory_cost=sec["argon2_memory_kib"])


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Constant-ish time: an unknown user still costs one hash verification."""
    ph = hasher()
    if user is None:
        ph.hash(password)
        return False
    try:
        ok = ph.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if ok and ph.check_needs_rehash(user.password_hash):
        user.password_hash = ph.hash(password)
    return ok


def check_password_policy(password: str) -> None:
    if len(password) < 10:
        raise ValidationError("Password must have at least 10 characters.",
                              fields={"password": ["At least 10 characters."]})


# ---------------------------------------------------------------------------
# Users and roles
# ---------------------------------------------------------------------------


USERNAME_MAX_LENGTH = 80


def normalize_username(username: str, *, strict: bool = True) -> str:
    """The one form a user name is stored and looked up in: format characters (zero-width
    spaces and joiners, BOM, bidi controls) removed, NFKC, case-folded, surrounding white
    space stripped. ``Admin``, ``ＡＤＭＩＮ``, ``ad\u200bmin`` and ``admin `` are all ``admin``.

    ``strict`` (creating a user) raises ValidationError for a name that ends up empty, longer
    than 80 characters or holding control characters; lookups pass ``strict=False`` and get
    the normalised text whatever it is (it then simply matches no user).
    """
    def drop_format(s: str) -> str:
        return "".join(ch for ch in s if unicodedata.category(ch) != "Cf")

    name = unicodedata.normalize("NFKC", drop_format(str(username)))
    name = drop_format(unicodedata.normalize("NFKC", name.casefold())).strip()
    if strict:
        problem = ("must not be empty" if not name else
                   f"must have at most {USERNAME_MAX_LENGTH} characters"
                   if len(name) > USERNAME_MAX_LENGTH else
                   "must not contain control characters"
                   if any(unicodedata.category(ch) == "Cc" for ch in name) else None)
        if problem:
            raise ValidationError(f"A user name {problem}.", fields={"username": [f"Name {problem}."]})
    return name


def create_user(username: str, password: str, roles: list[str], *, display_name: str = "",
                team_id: int | None = None, email: str | None = None) -> User:
    """Create a user with roles from roles.yaml; the caller commits.

    The name is stored normalised (:func:`normalize_username`), so a name differing from an
    existing one only in case, width, zero-width characters or spaces is a conflict (409).
    """
    known = dovetail().config.roles
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValidationError(f"Unknown role '{unknown[0]}'; roles are defined in roles.yaml: "
                              f"{', '.join(sorted(known))}.", fields={"roles": ["Unknown role."]})
    name = normalize_username(username)
    check_password_policy(password)
    taken = Conflict(f"User '{name}' already exists.", fields={"username": ["Taken."]})
    if db.session.scalar(select(User.id).where(User.username == name)):
        raise taken
    user = User(username=name, display_name=display_name or name, email=email,
                password_hash=hash_password(password), team_id=team_id)
    user.role_grants = [UserRole(role=r) for r in roles]
    try:
        with db.session.begin_nested():  # a concurrent creation of the same name
            db.session.add(user)
            db.session.flush()
    except IntegrityError:
        raise taken from None
    return user


def user_by_name(username: str) -> User | None:
    """The user whose (normalised) name matches ``username`` in any of its forms, or None."""
    name = normalize_username(username, strict=False)
    return db.session.scalar(select(User).where(User.username == name)) if name else None


def permissions_of(user: User | None) -> frozenset[str]:
    if user is None:
        return frozenset()
    roles = dovetail().config.roles  # the roles in force: swapped when roles.yaml changes
    cache = getattr(user, "_dovetail_perms", None)
    if cache is not None and cache[0] is roles:
        return cache[1]
    perms: set[str] = set()
    for name in user.role_names:
        role = roles.get(name)
        if role:
            perms.update(role.permissions)
    result = frozenset(perms)
    user._dovetail_perms = (roles, result)  # per-instance cache, valid while these roles are in force
    return result


def has_permission(user: User | None, perm: str) -> bool:
    perms = permissions_of(user)
    if "*" in perms or perm in perms:
        return True
    parts = perm.split(".")
    return any(".".join(parts[:i]) + ".*" in perms for i in range(1, len(parts)))


def scope_of(user: User | None) -> str:
    """The broadest record scope among the user's roles: own, team or all."""
    if user is None:
        return "own"
    roles = dovetail().config.roles
    best = "own"
    for name in user.role_names:
        role = roles.get(name)
        if role and SCOPE_RANK[role.scope] > SCOPE_RANK[best]:
            best = role.scope
    return best


def has_role(user: User | None, role: str) -> bool:
    return user is not None and role in user.role_names


# ---------------------------------------------------------------------------
# Current user
# ---------------------------------------------------------------------------


_KEY = "dovetail.user"


def current_user() -> User | None:
    """The authenticated user of this request (API token or web session), or None."""
    if not has_request_context():
        return getattr(g, "dovetail_user", None)
    env = request.environ
    if _KEY in env:
        return env[_KEY]
    user = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = user_for_token(header[7:].strip())
        if user is None:
            env["dovetail.bad_token"] = True
    elif not request.path.startswith("/api/"):
        if web_user and getattr(web_user, "is_authenticated", False):
            user = web_user._get_current_object()
    env[_KEY] = user
    return user


def require_user() -> User:
    user = current_user()
    if user is None:
        if has_request_context() and request.environ.get("dovetail.bad_token"):
            raise Unauthorized("The bearer token is invalid, expired or revoked.")
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>' "
                           "(POST /api/v1/auth/token).")
    return user


def require(perm: str) -> User:
    """Return the current user or raise 401/403 naming the missing permission."""
    user = require_user()
    if not has_permission(user, perm):
        raise PermissionDenied(f"You need the permission '{perm}' to do this.")
    return user


def permission_required(perm: str) -> Callable[[F], F]:
    """Decorator for views: 401 without a user, 403 without ``perm``."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require(perm)
            return fn(*args, **kwargs)

        wrapper.__dovetail_permission__ = perm  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco


# ---------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------

TOKEN_PREFIX = "dvt_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, name: str = "api", ttl_days: int | None = None) -> str:
    """Create a token; only its hash is stored. Returns the plain token once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    days = ttl_days or dovetail().config.security["token_ttl_days"]
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), prefix=token[:10],
                            name=name, expires_at=utcnow() + timedelta(days=days)))
    db.session.flush()
    return token


def user_for_token(token: str) -> User | None:
    """The active user a valid (unrevoked, unexpired) token belongs to, else None.

    One statement: token, user and role grants joined. Looked up once per request
    (:func:`current_user` keeps the answer for the request), never cached across requests,
    so a revoked token stops working at the next request in every worker.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = db.session.execute(
        select(User, ApiToken.revoked_at, ApiToken.expires_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token))
        .options(joinedload(User.role_grants))).unique().first()
    if row is None:
        return None
    user, revoked_at, expires_at = row
    if revoked_at or (expires_at and expires_at < utcnow()) or not user.active:
        return None
    return user


def revoke_token(token: str) -> bool:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at:
        return False
    row.revoked_at = utcnow()
    return True


# ---------------------------------------------------------------------------
# Login with throttling (database by default, Redis when configured)
# ---------------------------------------------------------------------------


class Throttle:
    """Counts login attempts per key (``user:<name>``, ``ip:<address>``) within a window,
    shared by every worker process: rows of ``core_login_attempt`` (a sliding window), or
    Redis counters when ``redis_url`` is set (each failure restarts the window).

    An attempt is counted *before* the password is checked, in the same atomic step that
    checks the limit, so concurrent requests cannot all read "4 failures" and all go on to
    guess: under a per-key advisory lock on PostgreSQL, inside SQLite's ``BEGIN IMMEDIATE``
    write lock, in one Lua script on Redis. A login that then succeeds gives it back.
    """

    #: Prefix of the Redis counters.
    redis_prefix = "dovetail:login:"

    _ACQUIRE = """
        local n = #KEYS
        for i = 1, n do
          if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then return 0 end
        end
        for i = 1, n do
          redis.call('INCR', KEYS[i])
          redis.call('EXPIRE', KEYS[i], ARGV[n + 1])
        end
        return 1
    """
    _RELEASE = """
        local v = tonumber(redis.call('GET', KEYS[1]) or '0')
        if v > 1 then return redis.call('DECR', KEYS[1]) end
        redis.call('DEL', KEYS[1])
        return 0
    """

    def __init__(self) -> None:
        dv = dovetail()
        self.window = dv.config.security["login_window_seconds"]
        self.redis = dv.redis

    def failures(self, key: str) -> int:
        if self.redis is not None:
            return int(self.redis.get(self.redis_prefix + key) or 0)
        since = utcnow() - timedelta(seconds=self.window)
        return db.session.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.key == key, LoginAttempt.at >= since)) or 0

    def acquire(self, limits: Mapping[str, int]) -> dict[str, int | None] | None:
        """Count one attempt against each key of ``limits`` (key → maximum) if every key is
        below its maximum; otherwise count nothing and return None.

        Returns the receipt :meth:`release` takes. On the database this commits the session.
        """
        keys = sorted(limits)
        if self.redis is not None:
            ok = self.redis.eval(self._ACQUIRE, len(keys), *[self.redis_prefix + k for k in keys],
                                 *[limits[k] for k in keys], self.window)
            return dict.fromkeys(keys) if int(ok) else None
        if is_postgres():  # SQLite: the transaction began IMMEDIATE, writers are serialised
            for key in keys:
                db.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(key)})
        since = utcnow() - timedelta(seconds=self.window)
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.key.in_(keys),
                                                      LoginAttempt.at < since))
        counts = dict(db.session.execute(
            select(LoginAttempt.key, func.count()).where(LoginAttempt.key.in_(keys))
            .group_by(LoginAttempt.key)).all())
        if any(counts.get(k, 0) >= limits[k] for k in keys):
            db.session.commit()  # keeps the pruning, ends the lock
            return None
        rows = {k: LoginAttempt(key=k) for k in keys}
        db.session.add_all(rows.values())
        db.session.flush()
        receipt: dict[str, int | None] = {k: row.id for k, row in rows.items()}
        db.session.commit()
        return receipt

    def release(self, receipt: Mapping[str, int | None]) -> None:
        """Take back the attempts of an :meth:`acquire` receipt; the caller commits."""
        for key, row_id in receipt.items():
            if self.redis is not None:
                self.redis.eval(self._RELEASE, 1, self.redis_prefix + key)
            elif row_id is not None:
                db.session.execute(delete(LoginAttempt).where(LoginAttempt.id == row_id))

    def reset(self, key: str) -> None:
        if self.redis is not None:
            self.redis.delete(self.redis_prefix + key)
            return
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for a throttle key."""
    return int.from_bytes(hashlib.sha256(f"dovetail.login:{key}".encode()).digest()[:8], "big",
                          signed=True)


def authenticate(username: str, password: str, ip: str | None) -> User:
    """Check credentials with throttling; the same error for unknown user and bad password.

    The attempt is counted before the password is checked (committed at once, so it
    survives the error response) and taken back when the login succeeds, which also clears
    the user name's earlier failures.
    """
    sec = dovetail().config.security
    throttle = Throttle()
    name = normalize_username(username, strict=False)
    ukey, ikey = f"user:{name[:190]}", f"ip:{(ip or '-')[:190]}"
    receipt = throttle.acquire({ukey: sec["login_max_failures"], ikey: sec["login_ip_max_failures"]})
    if receipt is None:
        raise TooManyRequests("Too many failed logins; try again later.")
    user = user_by_name(name)
    if not verify_password(user, password) or user is None or not user.active:
        raise Unauthorized(INVALID_LOGIN)  # the attempt counted above stays a failure
    throttle.reset(ukey)
    throttle.release({k: v for k, v in receipt.items() if k != ukey})
    user.last_login_at = utcnow()
    return user
