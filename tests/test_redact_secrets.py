"""A server that echoes the credentials back gets them masked: redact.mask_secrets, used by
client.Endpoint.redact for every error body and transport message a record keeps."""

from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from drbench import client
from drbench.redact import basic_auth_forms, mask_secrets


def test_mask_secrets_longest_first_and_ignores_empty() -> None:
    text = "user:pw and pw and sk-1"
    assert mask_secrets(text, ["pw", "user:pw", None, "", "sk-1"]) == "*** and *** and ***"
    assert mask_secrets("nothing here", ["absent"]) == "nothing here"


def test_basic_auth_forms_are_the_pair_and_the_header_text() -> None:
    assert basic_auth_forms("u:p") == ("u:p", base64.b64encode(b"u:p").decode())


def test_endpoint_redacts_key_userinfo_and_its_base64() -> None:
    ep = client.Endpoint.parse("http://alice:s3cret@127.0.0.1:1/v1/chat/completions")
    b64 = base64.b64encode(b"alice:s3cret").decode()
    assert ep.redact(f"got alice:s3cret / Basic {b64}") == "got *** / Basic ***"
    keyed = client.Endpoint.parse("http://127.0.0.1:1/v1/completions", api_key="sk-abc")
    assert keyed.redact("bad key sk-abc") == "bad key ***"
    assert keyed.redact("") == ""


def test_an_echoed_authorization_header_never_reaches_the_record() -> None:
    """A real HTTP exchange on 127.0.0.1: the 401 body quotes the header the server got."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=401, text=f"bad {request.headers['Authorization']}")

    async def exchange(auth_url: str | None, api_key: str | None) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            userinfo = f"{auth_url}@" if auth_url else ""
            url = f"http://{userinfo}127.0.0.1:{port}/v1/chat/completions"
            ep = client.Endpoint.parse(url, api_key=api_key)
            req = client.PreparedRequest.of("p", {"model": "m", "messages": []})
            async with client.make_session(30) as session:
                raw = await client.send(session, ep, req, 30)
            assert raw.status == 401
            return raw.body or ""
        finally:
            await runner.cleanup()

    assert asyncio.run(exchange("bob:hunter2", None)) == "bad Basic ***"
    assert asyncio.run(exchange(None, "sk-live-123")) == "bad Bearer ***"
