"""The evidence pack as a PDF: the signed document (reports/pack.py) laid out for a person —
a summary first, then one section per figure, with bar charts where a picture reads faster
than a table. Nothing in it is computed here: every number is the JSON's, and each page's
footer carries the hash the JSON is signed under.

fpdf2 draws it: pure Python (no system libraries to install on a mail host), maintained by
the py-pdf organisation with regular releases, and deterministic once the creation date is
fixed, so the same pack renders to the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

INK = (33, 37, 41)
MUTED = (90, 98, 105)
BAR = (31, 94, 158)
ALERT = (176, 0, 32)
LINE_H = 5.5


def _text(value: Any) -> str:
    """Core PDF fonts speak Latin-1: anything else is replaced, never an error."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


class _Pack(FPDF):
    def __init__(self, sha: str) -> None:
        super().__init__(format="A4")
        self._sha = sha
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(16, 16, 16)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 7)
        self.set_text_color(*MUTED)
        self.cell(0, 4, _text(f"SHA-256 of the signed JSON: {self._sha}   page {self.page_no()}"
                              "/{nb}"), align="C")


def render(pack: dict[str, Any]) -> bytes:
    """The PDF of a signed pack."""
    doc, figures = pack["document"], pack["document"]["figures"]
    pdf = _Pack(pack["sha256"])
    pdf.set_title(_text(f"Evidence pack: {doc['tenant']['name']}"))
    pdf.set_author("Outreach Compliance Gateway")
    pdf.set_creation_date(datetime.fromisoformat(pack["generated_at"].replace("Z", "+00:00")))
    pdf.alias_nb_pages()
    pdf.add_page()
    _cover(pdf, pack)
    _summary(pdf, figures)
    _optouts(pdf, figures["opt_outs"])
    _delivery(pdf, figures["delivery"])
    _lawful(pdf, figures["lawful_basis"])
    _review(pdf, figures["review"])
    _events(pdf, "Reputation breakers", figures["breakers"],
            ("at", "event", "scope", "name", "metric", "rate", "by"),
            "No breaker warned, tripped or was resumed in the period.")
    _events(pdf, "Data-subject requests", figures["data_subject_requests"],
            ("kind", "subject", "requested_at", "completed_at", "seconds"),
            "No export or erasure was requested in the period.")
    _events(pdf, "Key rotations", figures["keys"],
            ("at", "event", "purpose", "version", "domain", "selector", "by"),
            "No key was created, rotated or retired in the period.")
    _policies(pdf, figures["policies"])
    _events(pdf, "Retention purges", [
        {"at": p["at"], "purged": ", ".join(f"{k} {v}" for k, v in p["counts"].items() if v)}
        for p in figures["retention_purges"]], ("at", "purged"),
        "No retention purge ran in the period.")
    _heads(pdf, doc["audit"])
    return bytes(pdf.output())


def _heading(pdf: FPDF, title: str) -> None:
    if pdf.get_y() > pdf.h - 60:
        pdf.add_page()
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_text_color(*INK)
    pdf.cell(0, 8, _text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)


def _para(pdf: FPDF, text: str, color: tuple[int, int, int] = MUTED) -> None:
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*color)
    pdf.multi_cell(0, LINE_H, _text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)


def _table(pdf: FPDF, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(*INK)
    with pdf.table(text_align="LEFT", line_height=LINE_H - 1,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(230, 234, 238))
                   ) as table:
        head = table.row()
        for name in header:
            head.cell(_text(name.replace("_", " ")))
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(_text("" if value is None else value))
    pdf.ln(2)


def _bars(pdf: FPDF, title: str, values: Sequence[tuple[str, float]], unit: str = "") -> None:
    """A horizontal bar chart: one bar per label, its value written after it."""
    if not values:
        return
    top = max(v for _, v in values) or 1.0
    if pdf.get_y() + 8 + 6 * len(values) > pdf.h - 20:
        pdf.add_page()
    pdf.set_font("Helvetica", "B", 8)
    pdf.cell(0, 5, _text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 8)
    label_w, bar_w = 48.0, pdf.w - pdf.l_margin - pdf.r_margin - 48.0 - 28.0
    for label, value in values:
        y = pdf.get_y()
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(label_w, 5, _text(label[:30]))
        pdf.set_fill_color(*BAR)
        width = bar_w * value / top
        if width > 0:
            pdf.rect(pdf.l_margin + label_w, y + 1, max(width, 0.4), 3.2, style="F")
        pdf.set_xy(pdf.l_margin + label_w + width + 2, y)
        shown = f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"
        pdf.cell(26, 5, _text(shown))
        pdf.set_xy(pdf.l_margin, y + 6)
    pdf.set_fill_color(255, 255, 255)
    pdf.ln(2)


def _cover(pdf: FPDF, pack: dict[str, Any]) -> None:
    doc = pack["document"]
    pdf.set_font("Helvetica", "B", 18)
    pdf.set_text_color(*INK)
    pdf.cell(0, 10, "Compliance evidence pack", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 7, _text(f"Tenant: {doc['tenant']['name']} (id {doc['tenant']['id']})"),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(0, 7, _text(f"Period: {doc['period']['from']} to {doc['period']['to']} "
                         "(end excluded)"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    sig = pack["signature"]
    state = "settled" if doc["audit"]["settled"] else (
        "NOT settled: the period ended less than 10 minutes before; generate it again "
        "later for the final figures")
    _para(pdf, f"Generated {pack['generated_at']}. Computed from the gateway's audit trail "
               f"alone, up to the chain heads listed at the end ({state}). "
               f"The JSON beside this PDF is the evidence: its SHA-256 {pack['sha256']} is "
               f"signed with Ed25519 key {sig['key']} of the gateway's receipt keys. "
               "'gateway report verify' checks the signature and recomputes every figure "
               "from the trail.")


def _summary(pdf: FPDF, figures: dict[str, Any]) -> None:
    _heading(pdf, "Summary")
    o = figures["opt_outs"]
    relayed = sum(p["relayed"] for p in figures["delivery"].values())
    after = o["copies_relayed_after_opt_out"]
    rows = [
        ("Opt-outs received (asked for in the period)", o["received"]),
        ("Opt-outs honored (took effect in the period)", o["honored"]),
        ("Request to enforcement (p50 / p99 / max)",
         f"{o['enforcement_ms']['p50']} / {o['enforcement_ms']['p99']} / "
         f"{o['enforcement_ms']['max']} ms"),
        ("Copies relayed after an opt-out", after),
        ("Copies relayed", relayed),
        ("Messages held for review", sum(c["held"] for c in figures["review"].values())),
        ("Recipients refused for want of a lawful basis",
         sum(figures["lawful_basis"]["refused"].values())),
        ("Data-subject requests", len(figures["data_subject_requests"])),
        ("Erasures", sum(1 for r in figures["data_subject_requests"]
                         if r["kind"] == "erasure")),
        ("Breaker events", len(figures["breakers"])),
    ]
    _table(pdf, ("figure", "value"), rows)
    if after:
        _para(pdf, f"{after} copies were relayed after their recipient's opt-out took "
                   "effect: see the queue ids in 'gateway optouts report'.", ALERT)


def _optouts(pdf: FPDF, o: dict[str, Any]) -> None:
    _heading(pdf, "Opt-outs")
    _para(pdf, "Every opt-out that took effect in the period, by channel; request to "
               "enforcement is from the moment it was received to a moment every node "
               "already refused the address.")
    _bars(pdf, "Opt-outs by channel", sorted(o["by_channel"].items()))
    if o["enforcement_ms_by_node"]:
        _table(pdf, ("node", "opt-outs", "p50 ms", "p99 ms", "max ms"), [
            (node, v["count"], v["p50"], v["p99"], v["max"])
            for node, v in o["enforcement_ms_by_node"].items()])
    _para(pdf, f"Copies relayed after an opt-out: {o['copies_relayed_after_opt_out']}. "
               f"Copies already on the wire when one took effect: "
               f"{o['copies_in_flight_at_opt_out']}.", INK)


def _delivery(pdf: FPDF, delivery: dict[str, Any]) -> None:
    _heading(pdf, "Delivery by provider class")
    _para(pdf, "Copies upstream answered, by the recipient's mailbox provider as recorded "
               "when each was sent. Hard bounces: refused 5.1.x, and bounce reports that "
               "suppressed the address; complaints: the first per person.")
    _table(pdf, ("provider", "relayed", "delivered", "hard bounces", "rate", "policy blocks",
                 "complaints", "rate"), [
        (name, p["relayed"], p["delivered"], p["hard_bounces"],
         f"{p['hard_bounce_rate'] * 100:.3f} %", p["policy_blocks"], p["complaints"],
         f"{p['complaint_rate'] * 100:.3f} %") for name, p in delivery.items()])
    _bars(pdf, "Copies relayed", [(n, p["relayed"]) for n, p in delivery.items()])
    _bars(pdf, "Hard-bounce rate (%)", [
        (n, round(p["hard_bounce_rate"] * 100, 3)) for n, p in delivery.items()], " %")
    _bars(pdf, "Complaint rate (%)", [
        (n, round(p["complaint_rate"] * 100, 3)) for n, p in delivery.items()], " %")


def _lawful(pdf: FPDF, lawful: dict[str, Any]) -> None:
    _heading(pdf, "Lawful basis")
    sent = lawful["sent"]
    _table(pdf, ("decision", "signal source", "copies sent"), [
        (decision, source, n) for decision, by in sent.items() for source, n in by.items()])
    _bars(pdf, "Copies sent by decision", [(d, sum(by.values())) for d, by in sent.items()])
    if lawful["sent_by_table"]:
        _table(pdf, ("table version", "copies sent"), list(lawful["sent_by_table"].items()))
    refused = lawful["refused"]
    _para(pdf, f"Recipients refused for want of a lawful basis: {refused['at_rcpt']} at RCPT, "
               f"{refused['at_send_time']} after DATA, {refused['at_release']} on release.",
          INK)


def _review(pdf: FPDF, review: dict[str, Any]) -> None:
    _heading(pdf, "Held and refused messages, by check")
    if not review:
        _para(pdf, "No message was held or kept for review in the period.")
        return
    _table(pdf, ("check", "held", "refused and kept", "released", "discarded", "expired"), [
        (check, c["held"], c["refused_kept"], c["released"], c["discarded"], c["expired"])
        for check, c in review.items()])


def _events(pdf: FPDF, title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str],
            none: str) -> None:
    _heading(pdf, title)
    if not rows:
        _para(pdf, none)
        return
    _table(pdf, columns, [[row.get(c) for c in columns] for row in rows])


def _policies(pdf: FPDF, policies: dict[str, Any]) -> None:
    _heading(pdf, "Policy versions in force")
    _table(pdf, ("published", "table", "version", "digest", "by", "in force at start"), [
        (t["at"], t["policy"], t["version"], (t["digest"] or "")[:16], t["by"],
         "yes" if t["in_force_at_start"] else "") for t in policies["lawful_tables"]])
    if policies["tenant_rules"]:
        _table(pdf, ("changed", "tenant rules", "by", "in force at start"), [
            (r["at"], r["rules"] or "(none)", r["by"], "yes" if r["in_force_at_start"] else "")
            for r in policies["tenant_rules"]])


def _heads(pdf: FPDF, audit: dict[str, Any]) -> None:
    _heading(pdf, "Audit chain heads computed against")
    _table(pdf, ("chain", "batch", "head"), [
        (h["chain"], h["seq"], h["head"]) for h in audit["heads"]])
    _para(pdf, f"{audit['rows_read']} audit rows read. Rows written after these heads do not "
               "count, so the same heads always give the same figures.")
