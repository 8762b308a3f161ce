"""Where a tenant's webhook may point: checked by the guarded fetcher's rules when the URL is
set, and again (with the connection pinned) at every delivery, since DNS can change."""

from __future__ import annotations

from gateway.config import FetchConfig
from gateway.errors import InvalidValue
from gateway.net.fetch import FetchRefused, GuardedFetcher


def webhook_fetcher(allow_private: bool, config: FetchConfig | None = None) -> GuardedFetcher:
    """`events.allow_private_targets` lets webhooks reach the operator's own network (http
    too); otherwise a webhook follows the same rules as every tenant-supplied URL."""
    return GuardedFetcher(config or FetchConfig(), allow_http=allow_private,
                          allow_private=allow_private)


async def check_target(url: str, allow_private: bool, config: FetchConfig | None = None
                       ) -> None:
    try:
        await webhook_fetcher(allow_private, config).resolve(url)
    except FetchRefused as exc:
        raise InvalidValue(f"Webhook URL {url!r}: {exc}.") from None
