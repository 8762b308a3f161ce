"""Which admin-API route does what each `gateway` command does, and which commands stay on
the host (with why). A test holds every command of the CLI to one of the two, and every
route named here to the OpenAPI document; docs/api.md prints both tables."""

from __future__ import annotations

# command (as typed after `gateway`) -> the route(s) doing the same, "METHOD /path"
ROUTES: dict[str, tuple[str, ...]] = {
    "tenant add": ("POST /api/v1/tenants",),
    "tenant list": ("GET /api/v1/tenants",),
    "tenant suspend": ("POST /api/v1/tenants/{tenant_name}/suspend",),
    "tenant resume": ("POST /api/v1/tenants/{tenant_name}/resume",),
    "tenant set": ("PATCH /api/v1/tenants/{tenant_name}/settings",),
    "tenant show": ("GET /api/v1/tenants/{tenant_name}",),
    "tenant legal-hold": ("PUT /api/v1/tenants/{tenant_name}/legal-hold",
                          "DELETE /api/v1/tenants/{tenant_name}/legal-hold",
                          "GET /api/v1/tenants/{tenant_name}"),
    "tenant delete": ("DELETE /api/v1/tenants/{tenant_name}",),
    "domain add": ("POST /api/v1/domains",),
    "domain list": ("GET /api/v1/domains",),
    "domain verify": ("POST /api/v1/domains/{domain}/verify",),
    "domain check": ("GET /api/v1/domains/{domain}/check",),
    "login add": ("POST /api/v1/logins",),
    "login list": ("GET /api/v1/logins",),
    "login remove": ("DELETE /api/v1/logins/{username}",),
    "queue list": ("GET /api/v1/queue",),
    "queue show": ("GET /api/v1/queue/{copy_id}",),
    "queue retry": ("POST /api/v1/queue/{copy_id}/retry", "POST /api/v1/queue/retry"),
    "queue delete": ("POST /api/v1/queue/{copy_id}/delete",),
    "trace": ("GET /api/v1/trace/{reference}",),
    "events": ("GET /api/v1/tenants/{tenant_name}/events",),
    "webhook set": ("PUT /api/v1/tenants/{tenant_name}/webhook",),
    "webhook remove": ("DELETE /api/v1/tenants/{tenant_name}/webhook",),
    "mailbox add": ("POST /api/v1/mailboxes",),
    "mailbox connect": ("PUT /api/v1/mailboxes/{mailbox_id}/tokens",
                        "POST /api/v1/mailboxes/{mailbox_id}/oauth",
                        "PUT /api/v1/mailboxes/{mailbox_id}/password"),
    "mailbox disconnect": ("DELETE /api/v1/mailboxes/{mailbox_id}/tokens",),
    "mailbox list": ("GET /api/v1/mailboxes",),
    "mailbox remove": ("DELETE /api/v1/mailboxes/{mailbox_id}",),
    "mailbox pause": ("POST /api/v1/mailboxes/{mailbox_id}/pause",),
    "mailbox resume": ("POST /api/v1/mailboxes/{mailbox_id}/resume",),
    "oauth-client add": ("POST /api/v1/oauth-clients",),
    "oauth-client list": ("GET /api/v1/oauth-clients",),
    "apikey add": ("POST /api/v1/apikeys",),
    "apikey list": ("GET /api/v1/apikeys",),
    "apikey revoke": ("DELETE /api/v1/apikeys/{key_id}",),
    "dkim generate": ("POST /api/v1/domains/{domain}/dkim",),
    "dkim list": ("GET /api/v1/domains/{domain}/dkim",),
    "dkim show-dns": ("GET /api/v1/domains/{domain}/dkim",),
    "dkim retire": ("DELETE /api/v1/domains/{domain}/dkim/{selector}",),
    "optouts list": ("GET /api/v1/optout-reviews",),
    "optouts show": ("GET /api/v1/optout-reviews/{review_id}",),
    "optouts confirm": ("POST /api/v1/optout-reviews/{review_id}/confirm",),
    "optouts dismiss": ("POST /api/v1/optout-reviews/{review_id}/dismiss",),
    "optouts report": ("GET /api/v1/tenants/{tenant_name}/optout-report",),
    "report": ("GET /api/v1/tenants/{tenant_name}/evidence-pack",),
    "report verify": ("POST /api/v1/evidence-pack/verify",),
    "policy show": ("GET /api/v1/lawful-policy",),
    "policy versions": ("GET /api/v1/lawful-policy/versions",),
    "policy load": ("POST /api/v1/lawful-policy",),
    "records import-attributes": ("POST /api/v1/tenants/{tenant_name}/recipient-records",),
    "records import-consent": ("POST /api/v1/tenants/{tenant_name}/consent-records",),
    "records export-consent": ("GET /api/v1/tenants/{tenant_name}/consent-records",),
    "breaker list": ("GET /api/v1/breakers",),
    "breaker resume": ("POST /api/v1/breakers/{breaker_id}/resume",),
    "held list": ("GET /api/v1/held",),
    "held show": ("GET /api/v1/held/{held_id}",),
    "held body": ("GET /api/v1/held/{held_id}/body",),
    "held release": ("POST /api/v1/held/{held_id}/release",),
    "held discard": ("POST /api/v1/held/{held_id}/discard",),
    "held note": ("POST /api/v1/held/{held_id}/notes",),
    "held release-all": ("POST /api/v1/held/decisions",),
    "held discard-all": ("POST /api/v1/held/decisions",),
    "subject export": ("POST /api/v1/subjects/export",),
    "subject erase": ("POST /api/v1/subjects/erase",),
    "suppress add": ("POST /api/v1/suppression-lists/{list_name}/entries",),
    "suppress remove": ("POST /api/v1/suppression-lists/{list_name}/removals",),
    "suppress check": ("POST /api/v1/suppression-lists/{list_name}/check",),
    "suppress list": ("GET /api/v1/suppression-lists/{list_name}/entries",),
    "suppress import": ("POST /api/v1/suppression-lists/{list_name}/import",),
    "suppress export": ("GET /api/v1/suppression-lists/{list_name}/export",),
    "receipt key": ("GET /api/v1/receipt-keys",),
    "receipt verify": ("POST /api/v1/receipts/verify",),
    "receipt list": ("GET /api/v1/tenants/{tenant_name}/receipts",),
}

# Why a command has no route. The first five are the host operations the admin API leaves
# to whoever runs the machine; the others are not operations on the gateway's data at all.
SCHEMA = "schema upgrades"
KEYS = "master and purpose keys"
REWRAP = "re-wrapping sealed secrets under a new master key"
REVIEWERS = "reviewer accounts and their TOTP seeds"
PROCESS = "the gateway's own process and configuration file"
REASONS = (SCHEMA, KEYS, REWRAP, REVIEWERS, PROCESS)

HOST_ONLY: dict[str, str] = {
    "serve": PROCESS,
    "check-config": PROCESS,
    "demo": PROCESS,
    "send-test": PROCESS + " (an SMTP client of the submission port, which an API client "
                           "reaches by SMTP itself)",
    "retention": PROCESS + " (prints the configured schedule: docs/retention.md)",
    "upstream list": PROCESS + " (upstreams are declared in it)",
    "upstream password": PROCESS + " (a shared upstream's login belongs with its "
                                   "declaration)",
    "db upgrade": SCHEMA,
    "key list": KEYS,
    "key rotate": KEYS,
    "key retire": KEYS,
    "audit verify": KEYS + " (it checks the trail with the audit-anchor key)",
    "audit anchor": KEYS + " (it signs with the audit-anchor key)",
    "purge": KEYS + " (a run opens the audit-anchor key; the running gateway purges every "
                    "[retention] interval by itself)",
    "vault rewrap": REWRAP,
    "vault reseal": REWRAP,
    "user add": REVIEWERS,
    "user list": REVIEWERS,
    "user remove": REVIEWERS,
    "user unlock": REVIEWERS,
    "user code": REVIEWERS,
}
