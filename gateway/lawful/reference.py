"""docs/lawful-basis.md from the shipped table (`make docs`): the rows as counsel will read
them, with the unverified ones marked."""

from __future__ import annotations

from pathlib import Path

from gateway.lawful.signals import NO_SIGNAL
from gateway.lawful.table import Kind, Row, parse
from gateway.lawful.versions import SHIPPED

INTRO = """# Lawful basis per recipient

> **Not legal advice.** The gateway ships the table below so that it enforces something
> sensible from the first day. Your counsel confirms it or replaces it
> (`deploy/lawful-basis.toml`, published with `gateway policy load`). Rows marked
> **unverified** rest on secondary sources or none.

A tenant opts in with `gateway tenant set T lawful_basis enforce` (and may set
`lawful_default`, the decision for recipients nothing places): a recipient without a basis
gets `550 5.7.1 Not sent: no lawful basis for this recipient under ocg-default v3
(require-consent)` — the policy, its version and the decision, never the person's data.
Each recipient is decided again right before the copy goes upstream, under the version in
force then (a version published, or a consent withdrawn, during a long DATA wins): one
without a basis any more is not sent and is reported to the sender. Each copy's audit row
records what it was sent on: `"lawful": {{"policy": "ocg-default v3", "decision":
"require-consent", "source": "cctld", "consent": "yes"}}`. A message held for review is
decided again when a reviewer releases it. A tenant that has not opted in is not affected.
With
`suppressed_recipients = accept-and-report`, these refusals become reports as suppressed
recipients do: `250` at `RCPT`, never sent, one delivery report to the sender whose status
line names the policy, a `copy.suppressed` audit row with the check `lawful-basis`.

Attribute and consent records are stored (by the audit digest of the address only) with
CASL's implied-consent periods (2 years after a purchase or contract, 6 months after an
inquiry, none for conspicuous publication), expiry and withdrawal; a data subject's export
shows them, and an erasure deletes the attribute record and keeps each consent as proof,
its evidence reduced to a SHA-256. Import them as CSV, the addresses digested as they are
read and never stored; bad rows are reported by line and left out:

```sh
gateway records import-attributes acme people.csv  # address,country,kind
gateway records import-consent acme consents.csv   # address,basis,given_at,source,...
```

(a consent row may add `method`, `evidence`, `scope`, `expires_at`, `withdrawn_at`; or
`POST /api/v1/tenants/{{t}}/recipient-records` and `/consent-records` with the CSV as body).
`gateway records export-consent acme > consents.csv` (or `GET` on the consent route) writes
the tenant's consents as that import reads them back, each person by digest, since no
address was stored: an export goes back into this installation only.

Every node holds the records in memory, so a recipient is decided with no query,
with records or without (8 µs either way, `python bench/lawful_decision.py`). A write ends
with a change row (`lawful_record_changes`, digests only, kept a day) that every node reads
within `settings_refresh` seconds and the writing node at once; until then a new consent on
another node can only mean a refusal, never a wrong send, while a withdrawal or an erasure
is as late as that refresh. Past two million people a node reads the rest from the database.

The whole of it, run as a campaign would: `python bench/lawful_run.py` sends 10,000
one-recipient messages over two nodes to people across the table's countries, kinds and
signals, publishes a stricter table half way, and checks every send against the issue's
table written out independently — it prints the counts by decision and signal source, the
sends contrary to the table (0), each node's time to the new version, and whether the
notice was in each first copy and in no later one.

## The notice (`allow-with-notice`)

Where the table says `allow-with-notice`, the first message from the tenant (the
controller) to the person carries a short notice (GDPR Art. 14): who the controller is,
where the address came from, the purpose and its legal basis, a link to the tenant's full
notice, and — set apart, as Art. 21(4) asks — the right to object, whose link is the copy's
own one-click opt-out. It goes in with the footer, rendered in the same sandbox and spliced
the same way (the message's other bytes stay as they were), in every text part. Later
messages to the person go without it. The tenant says what only it knows:

```sh
gateway tenant set acme notice_source "your company's website, team page"
gateway tenant set acme notice_purpose "our services for your business; legitimate interest"
gateway tenant set acme notice_url https://acme.example/privacy
```

(`notice_controller` defaults to `sender_name`; `notice_text` and `notice_html` replace the
wording, and must show `{{{{ unsubscribe_url }}}}`). Until the three are set, a recipient owed
the notice gets `451 4.3.5` (the tool tries again; nothing is lost). A person counts as told
once a copy carrying the notice is accepted upstream (or kept in the queue, which sends those
bytes): a copy refused upstream leaves it owed. Two first messages in flight at once may both
carry it. A signed or encrypted message, or one without text, cannot carry it: it is not sent
to a person owed the notice (`550 5.7.1`, reported like any refused recipient). Each copy's
audit row says `"notice": "yes"` when it carried it; `lawful_notices` keeps, by digest only,
when and in which message each person was told, as the tenant's proof (an erasure keeps it).

## A tenant's own rules

The operator's table is a floor. A tenant may be stricter, never laxer:

```sh
gateway tenant set acme lawful_overrides "GB=require-consent FR.generic=deny"
```

Each entry is `COUNTRY[.kind]=decision`; for a recipient it matches, the stricter of the
table's decision and the tenant's wins (an entry laxer than the table changes nothing, today
or under a later table). A recipient of unknown kind takes the strictest entry for the
country. Like every tenant setting, a change is audited and in force on every node within
`settings_refresh` seconds; a copy decided by an entry says so in its audit row
(`"override": "GB"`), and a refusal names the policy as `ocg-default v3 + tenant rules
3f2a9c1d` — the rules' revision, the same for the same rules however written.

## Versions

The first start publishes the shipped table as version 1. Counsel's table is published with
`gateway policy load FILE` (or `POST /api/v1/lawful-policy` with an admin key): a new
version, an audit row (`policy.published`, naming the unverified rows), in force on every
node within seconds (each re-reads the newest every `[tenants] settings_refresh` seconds),
no restart. The same document again makes no version; a bad one is refused naming the row
and key. Every version is kept: `gateway policy versions`, `gateway policy show --version N`.

Cold outreach is lawful in some places and not in others, and what decides is the
recipient's country and kind, not the sender's. For each recipient the table gives one
decision:

| decision | what the gateway does for a tenant that enforces the table |
|---|---|
| `allow` | sends |
| `allow-with-notice` | sends; the tenant's first message to the person carries the notice (below) |
| `require-consent` | sends only if a consent record covers the person |
| `deny` | never sends |

Kinds: **named** (a named person's business address), **generic** (a role address:
`info@`, `sales@`), **sole trader** (a sole trader or partnership: in law often a consumer).
A recipient whose kind is not known takes the strictest decision of their country's row.

What places a recipient, in order of trust: the tenant's **attribute record** (country,
kind); a **consent record** (it places nobody, but lifts `require-consent`); what the
campaign tool **states in the message**; the address's **ccTLD**; the **tenant's default**;
the table's `[default]` row. Generic-use ccTLDs and every gTLD say nothing: {no_signal}.
The location of a domain's mail servers is never used.

## What the campaign tool states in the message

A tool that knows where its recipients are, and holds no records at the gateway, says so in
the message, one field per recipient:

```
X-Gateway-Recipient: <anna.schmidt@firma.de>; country=DE; kind=sole-trader
```

(`country` an ISO 3166-1 alpha-2 code, `UK` taken for `GB`; `kind` one of `named`,
`generic`, `sole-trader`; either may be left out). The fields are read after `DATA`, never
reach upstream, and rank below the tenant's attribute record (the audit row's source is
`header`). A recipient they leave without a basis is not sent and is reported to the sender,
as accept-and-report does; a message with that one recipient is refused `550 5.7.1`. A field
that cannot be read refuses the message: `550 5.6.0 X-Gateway-Recipient field 2: kind is
named, generic or sole-trader.` (the field's position, never its address). A field naming an
address the message does not go to says nothing.

At `RCPT` the gateway cannot see the message yet, so it refuses on the ccTLD or a default
that a field might overrule. A tenant whose tool writes these fields sets
`gateway tenant set T lawful_statements yes`: `RCPT` then refuses only on an attribute
record, and the rest is decided once the message is in. Without it, a field can still refuse
a recipient the `RCPT` decision let through, never send to one it refused.
"""


def _row(name: str, row: Row) -> str:
    cells = " | ".join(f"`{row.decisions[k].value}`" for k in Kind)
    status = "verified" if row.verified else "**unverified**"
    note = f" ({row.note})" if row.note else ""
    return f"| {name} | {cells} | {row.source}{note} | {status} |"


def markdown(path: Path = SHIPPED) -> str:
    table = parse(path.read_text(), str(path))
    lines = [INTRO.format(no_signal=", ".join(f"`.{t}`" for t in sorted(NO_SIGNAL))),
             f"## The shipped table: `{table.policy_id}`", "",
             table.title, "",
             "| country | named | generic | sole trader | source | status |",
             "|---|---|---|---|---|---|"]
    lines += [_row(code, row) for code, row in table.countries.items()]
    lines.append(_row("any other country, or none known", table.default))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
