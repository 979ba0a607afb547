"""Authentication and authorisation: Argon2id passwords, hashed API tokens,
database- or Redis-backed login throttling, and permission checks."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, g, has_request_context, request
from sqlalchemy import delete, func, select

from core.db import db, utcnow
from core.errors import PermissionDenied, TooManyRequests, Unauthorized
from core.models import ApiToken, LoginAttempt, User, UserRole

F = TypeVar("F", bound=Callable[..., Any])

SCOPE_RANK = {"own": 0, "team": 1, "all": 2}
INVALID_LOGIN = "Invalid username or password."


def _dovetail() -> Any:
    return current_app.extensions["dovetail"]


def hasher() -> PasswordHasher:
    sec = _dovetail().config.security
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
    from core.errors import ValidationError

    if len(password) < 10:
        raise ValidationError("Password must have at least 10 characters.",
                              fields={"password": ["At least 10 characters."]})


# ---------------------------------------------------------------------------
# Users and roles
# ---------------------------------------------------------------------------


def create_user(username: str, password: str, roles: list[str], *, display_name: str = "",
                team_id: int | None = None, email: str | None = None) -> User:
    """Create a user with roles from roles.yaml; the caller commits."""
    from core.errors import Conflict, ValidationError

    known = _dovetail().config.roles
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValidationError(f"Unknown role '{unknown[0]}'; roles are defined in roles.yaml: "
                              f"{', '.join(sorted(known))}.", fields={"roles": ["Unknown role."]})
    check_password_policy(password)
    if db.session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"User '{username}' already exists.", fields={"username": ["Taken."]})
    user = User(username=username, display_name=display_name or username, email=email,
                password_hash=hash_password(password), team_id=team_id)
    user.role_grants = [UserRole(role=r) for r in roles]
    db.session.add(user)
    db.session.flush()
    return user


def permissions_of(user: User | None) -> frozenset[str]:
    if user is None:
        return frozenset()
    cache = getattr(user, "_dovetail_perms", None)
    if cache is not None:
        return cache
    roles = _dovetail().config.roles
    perms: set[str] = set()
    for name in user.role_names:
        role = roles.get(name)
        if role:
            perms.update(role.permissions)
    result = frozenset(perms)
    user._dovetail_perms = result  # per-instance cache; instances live for one request
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
    roles = _dovetail().config.roles
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
        from flask_login import current_user as web_user

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
    days = ttl_days or _dovetail().config.security["token_ttl_days"]
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), prefix=token[:10],
                            name=name, expires_at=utcnow() + timedelta(days=days)))
    db.session.flush()
    return token


def user_for_token(token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    now = utcnow()
    if row is None or row.revoked_at or (row.expires_at and row.expires_at < now):
        return None
    user = db.session.get(User, row.user_id)
    if user is None or not user.active:
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
    """Counts failures per key within a window; shared by every worker process."""

    def __init__(self) -> None:
        dv = _dovetail()
        self.window = dv.config.security["login_window_seconds"]
        self.redis = dv.redis

    def failures(self, key: str) -> int:
        if self.redis is not None:
            return int(self.redis.get(f"dovetail:login:{key}") or 0)
        since = utcnow() - timedelta(seconds=self.window)
        return db.session.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.key == key, LoginAttempt.at >= since)) or 0

    def record(self, key: str) -> None:
        if self.redis is not None:
            k = f"dovetail:login:{key}"
            pipe = self.redis.pipeline()
            pipe.incr(k)
            pipe.expire(k, self.window)
            pipe.execute()
            return
        db.session.add(LoginAttempt(key=key))

    def reset(self, key: str) -> None:
        if self.redis is not None:
            self.redis.delete(f"dovetail:login:{key}")
            return
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))


def authenticate(username: str, password: str, ip: str | None) -> User:
    """Check credentials with throttling; the same error for unknown user and bad password.

    Commits the failure counter itself so that it survives the error response.
    """
    sec = _dovetail().config.security
    throttle = Throttle()
    ukey, ikey = f"user:{username.lower()}", f"ip:{ip or '-'}"
    if throttle.failures(ukey) >= sec["login_max_failures"] or \
            throttle.failures(ikey) >= sec["login_ip_max_failures"]:
        raise TooManyRequests("Too many failed logins; try again later.")
    user = db.session.scalar(select(User).where(User.username == username))
    if not verify_password(user, password) or not user.active:
        throttle.record(ukey)
        throttle.record(ikey)
        db.session.commit()
        raise Unauthorized(INVALID_LOGIN)
    throttle.reset(ukey)
    user.last_login_at = utcnow()
    return user
