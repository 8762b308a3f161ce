"""Settings that load but do not do what their author likely meant: `gateway check-config`
prints each as a warning naming the setting, and `serve` logs them at start."""

from __future__ import annotations

from gateway.config import Config


def advice(config: Config) -> list[tuple[str, str]]:
    """(setting, what is wrong with it) for each questionable setting."""
    found = []
    unsub = config.unsubscribe
    if unsub.mailto_domain and not unsub.mailto_listen:
        found.append(("unsubscribe.mailto_domain",
                      f"is '{unsub.mailto_domain}' but unsubscribe.mailto_listen is empty: no "
                      "listener takes mail to the unsubscribe address, so copies advertise "
                      "only the https:// link (set mailto_listen to advertise mailto:)"))
    return found
