"""Which file URLs the gateway fetches on a bot's behalf (server-side request forgery)."""

from __future__ import annotations

import httpx
import pytest

from livechat_hitl.livechat.files import FileFetcher, FileRefused

MB = 1024 * 1024


def fetcher(*, allow: list[str] | None = None, only: bool = False) -> FileFetcher:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request may leave: {request.url}")

    return FileFetcher(
        httpx.AsyncClient(transport=httpx.MockTransport(refuse)), allow=allow, only_allowed=only
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/x",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
    ],
)
async def test_non_public_addresses_and_schemes_are_refused(url: str) -> None:
    with pytest.raises(FileRefused):
        await fetcher().check(url)


async def test_the_allow_list_admits_hosts_wildcards_and_networks() -> None:
    allowed = fetcher(allow=["files.internal", "*.corp.example", "10.0.0.0/8"])
    await allowed.check("http://files.internal/a.pdf")
    await allowed.check("https://cdn.corp.example/a.pdf")
    await allowed.check("http://10.9.8.7/a.pdf")
    with pytest.raises(FileRefused):
        await allowed.check("http://192.168.1.1/a.pdf")


async def test_only_the_allow_list_resolves_nothing_else() -> None:
    only = fetcher(allow=["files.internal", "10.0.0.0/8"], only=True)
    await only.check("http://files.internal/a.pdf")
    await only.check("http://10.0.0.5/a.pdf")
    for url in ("https://example.com/a.pdf", "http://8.8.8.8/a.pdf"):
        with pytest.raises(FileRefused, match="HITL_FETCH_ALLOWLIST"):
            await only.check(url)


async def test_precheck_refuses_an_announced_size_over_10_mb() -> None:
    def head(request: httpx.Request) -> httpx.Response:
        assert request.method == "HEAD"
        size = 11 * MB if request.url.path == "/big" else MB
        return httpx.Response(200, headers={"content-length": str(size)})

    checked = FileFetcher(
        httpx.AsyncClient(transport=httpx.MockTransport(head)), allow=["files.internal"]
    )
    await checked.precheck("http://files.internal/small")
    with pytest.raises(FileRefused, match="10 MB"):
        await checked.precheck("http://files.internal/big")
