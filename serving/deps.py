"""The routes' shared dependencies, in one place, as `Annotated` aliases (FastAPI's full-stack template does
the same): the authenticated partner, with its scope checked and one item charged, and the app's services.

Services are read from `request.app.state`, where `create_app` puts them, never from module globals: one
process can hold several apps with their own settings and databases (the tests do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from serving.batcher import MicroBatcher
from serving.classification import Classifier
from serving.config import Settings
from serving.conversations import MemoryWindows, RedisWindows, WindowLocks
from serving.hashes import HashLists
from serving.keys import KeyStoreUnavailable, KeyVerifier, Partner, Quota, RateLimiter, RedisRateLimiter
from serving.metrics import Metrics
from serving.problems import ApiError
from serving.store import FlagStore
from vicas.conversation import ConversationModel
from vicas.policy import Policy

bearer = HTTPBearer(auto_error=False, description="a partner key from `vicas keys create`")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_policy(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_db(request: Request) -> Engine:
    db: Engine = request.app.state.db
    return db


def get_store(request: Request) -> FlagStore:
    store: FlagStore = request.app.state.store
    return store


def get_keys(request: Request) -> KeyVerifier:
    keys: KeyVerifier = request.app.state.keys
    return keys


def get_limiter(request: Request) -> RateLimiter | RedisRateLimiter:
    limiter: RateLimiter | RedisRateLimiter = request.app.state.limiter
    return limiter


def get_hash_lists(request: Request) -> HashLists:
    lists: HashLists = request.app.state.hash_lists
    return lists


def get_batcher(request: Request) -> MicroBatcher:
    """The batcher the lifespan started (absent before it ran: such a request is a bug, answered 500)."""
    batcher: MicroBatcher = request.app.state.batcher
    return batcher


def get_conversation_model(request: Request) -> ConversationModel | None:
    model: ConversationModel | None = request.app.state.conversations
    return model


def get_windows(request: Request) -> MemoryWindows | RedisWindows:
    windows: MemoryWindows | RedisWindows = request.app.state.windows
    return windows


def get_window_locks(request: Request) -> WindowLocks:
    locks: WindowLocks = request.app.state.window_locks
    return locks


def get_classifier(request: Request) -> Classifier:
    """The services of one classification, taken now: the image reader and models are set at start."""
    state = request.app.state
    return Classifier(
        settings=state.settings,
        policy=state.policy,
        metrics=state.metrics,
        db=state.db,
        store=state.store,
        match_log=state.match_log,
        hash_lists=state.hash_lists,
        match_settings=state.match_settings,
        batcher=state.batcher,
        reader=state.images,
        conversations=state.conversations,
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
DbDep = Annotated[Engine, Depends(get_db)]
StoreDep = Annotated[FlagStore, Depends(get_store)]
KeysDep = Annotated[KeyVerifier, Depends(get_keys)]
LimiterDep = Annotated[RateLimiter | RedisRateLimiter, Depends(get_limiter)]
HashListsDep = Annotated[HashLists, Depends(get_hash_lists)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
ConversationModelDep = Annotated[ConversationModel | None, Depends(get_conversation_model)]
WindowsDep = Annotated[MemoryWindows | RedisWindows, Depends(get_windows)]
WindowLocksDep = Annotated[WindowLocks, Depends(get_window_locks)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]


def charge(
    limiter: RateLimiter | RedisRateLimiter, metrics: Metrics, partner: Partner, cost: int, response: Response
) -> Quota:
    """Take `cost` items from the partner's rate limit; 429 when it is spent; headers on the answer."""
    quota = limiter.acquire(partner, cost)
    if quota.wait > 0:
        metrics.rate_limited.labels(partner.name).inc()
        raise ApiError(
            429,
            f"rate limit of {partner.rate_limit_per_minute} items per minute reached",
            "rate_limited",
            quota.headers(),
        )
    response.headers.update(quota.headers())
    return quota


def partner_for(scope: str | None) -> Callable[..., Partner | None]:
    """A dependency that verifies the key, checks `scope` (None: any valid key) and charges one item."""

    def dependency(
        request: Request,
        response: Response,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        settings: SettingsDep,
        keys: KeysDep,
        limiter: LimiterDep,
        metrics: MetricsDep,
    ) -> Partner | None:
        if not settings.require_api_key:
            return None
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(401, "send your API key as 'Authorization: Bearer KEY'", "missing_key", challenge)
        try:
            partner = keys.verify(credentials.credentials.strip())
        except KeyStoreUnavailable as e:
            raise ApiError(
                503, "the key store is unreachable; retry shortly", "key_store_unreachable", {"Retry-After": "5"}
            ) from e
        if partner is None:
            raise ApiError(401, "unknown or revoked API key", "invalid_key", challenge)
        request.state.partner = partner.name  # the per-partner label of the request metrics
        if scope is not None and scope not in partner.scopes:
            raise ApiError(403, f"this key lacks the '{scope}' scope", "missing_scope")
        charge(limiter, metrics, partner, 1, response)
        return partner

    return dependency


# The partner behind the request, None when the service runs without keys (VICAS_REQUIRE_API_KEY=false)
ClassifyPartner = Annotated[Partner | None, Depends(partner_for("classify"))]
VerdictsPartner = Annotated[Partner | None, Depends(partner_for("verdicts"))]
AppealsPartner = Annotated[Partner | None, Depends(partner_for("appeals"))]
BlocklistsPartner = Annotated[Partner | None, Depends(partner_for("blocklists"))]
AnyPartner = Annotated[Partner | None, Depends(partner_for(None))]
