"""ASGI middleware of the API: a body size limit that holds without Content-Length, and Secure cookies
on HTTPS answers. Pure ASGI: they run before FastAPI reads a byte of the body."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import problems


class BodyLimit:
    """Answer 413 to bodies over the limit, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(problems.REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        state = scope.setdefault("state", {})  # request.state, shared by every layer
        rid = state.get("request_id") or problems.new_request_id(given)
        state["request_id"] = rid
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send, rid)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(send, rid)

    async def _too_large(self, send: Send, request_id: str) -> None:
        detail = f"the request body is over {self.max_bytes} bytes (VICAS_MAX_BODY_BYTES)"
        body = json.dumps(problems.problem_body(413, detail, "body_too_large", request_id)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", problems.PROBLEM_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (problems.REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecureOverHttps:
    """Mark cookies Secure on answers to HTTPS requests: a console reached over HTTPS never sends its
    session over plain HTTP, and one reached over http://127.0.0.1 on a laptop still logs in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v + b"; secure" if k.lower() == b"set-cookie" and b"secure" not in v.lower() else v)
                    for k, v in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, secure)


class _TooLarge(Exception):
    pass
