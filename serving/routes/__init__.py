"""The API's routes, one router per resource (as FastAPI's full-stack template does); `create_app` includes
them in this order."""

from __future__ import annotations

from fastapi import APIRouter

from serving.routes import appeals, blocklists, classify, conversations, operations, usage, verdicts

ROUTERS: list[APIRouter] = [
    classify.router,
    verdicts.router,
    appeals.router,
    conversations.router,
    usage.router,
    blocklists.router,
    operations.router,
]
