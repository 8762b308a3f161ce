"""The reply classifier: a reply's own words decide, never the quoted history with our own
footer's "unsubscribe"; auto-replies never opt anyone out; words that only look like a
request are not one. Figures (precision, recall) come from bench/optout_classifier.py."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.feedback.reply_classifier import ReplyVerdict, classify

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "replies" / "corpus.jsonl"
FOOTER = ("-- \nTo stop receiving these emails from Acme Sales, unsubscribe:\n"
          "https://links.acme.example/u/abc\nAcme Corp, 1 Main Street, Springfield")


def reply(text: str, *, html: str | None = None, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Anna Weber <anna@nordlicht.example>"
    msg["To"] = "jamie@acme.example"
    msg["Subject"] = headers.pop("Subject", "Re: Quick question")
    msg["In-Reply-To"] = "<1.2@acme.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def quoted(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines())


def test_our_footer_in_the_quoted_history_opts_nobody_out():
    original = "Hi Anna,\n\nWorth a call?\n\nJamie\n\n" + FOOTER
    gmail = reply("Sounds good, Tuesday works.\n\nOn Mon, 2 Nov 2026 09:00, Jamie Lee "
                  f"<jamie@acme.example> wrote:\n\n{quoted(original)}")
    outlook = reply("Sounds good, Tuesday works.\n\n-----Original Message-----\nFrom: Jamie "
                    "Lee <jamie@acme.example>\nSent: Monday\nSubject: Quick question\n\n"
                    + original)
    for raw in (gmail, outlook):
        assert classify(raw).verdict is ReplyVerdict.NONE


@pytest.mark.parametrize("text", [
    "Please remove me from your list.", "unsubscribe", "Bitte austragen.",
    "Merci de me désinscrire.", "Quítenme de la lista, por favor.", "Cancellatemi.",
    "Por favor, removam-me da lista.", "Verwijder mij uit uw bestand.", "STOP",
])
def test_a_plain_request_in_each_language_suppresses(text: str):
    result = classify(reply(text + "\n\n" + quoted(FOOTER)))
    assert result.verdict is ReplyVerdict.OPT_OUT, result


@pytest.mark.parametrize("text", [
    "Please don't remove me, I'm just busy this month.",
    "How do I unsubscribe my colleague? She moved on.",
    "Bitte nicht austragen, ich melde mich nächste Woche.",
    "Ne me désinscrivez pas, je suis intéressé.",
    "I unsubscribed by mistake, can you add me back?",
])
def test_words_that_only_look_like_a_request(text: str):
    assert classify(reply(text)).verdict is ReplyVerdict.NONE


def test_a_request_inside_a_long_reply_or_a_question_goes_to_a_person():
    long = ("We looked at the proposal with the team and compared it with two other vendors "
            "over the last month; the pricing was fine but the integration effort is too "
            "high for us this year, and our IT department has other priorities until the "
            "migration is done, so please remove me from your list for now.")
    assert classify(reply(long)).verdict is ReplyVerdict.POSSIBLE
    assert classify(reply("Who gave you my address? Remove me.")).verdict is ReplyVerdict.POSSIBLE


HTML = ("<html><body><p>Please unsubscribe me.</p><blockquote><p>Thanks for reading! "
        "Unsubscribe: https://links.acme.example/u/x</p></blockquote></body></html>")


def test_html_replies_are_read_without_their_quoted_history():
    empty_plain = reply("", html=HTML)  # an empty text/plain alternative
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@x.example", "jamie@acme.example", "RE: Hi"
    msg.set_content(HTML, subtype="html")  # HTML only
    for raw in (empty_plain, msg.as_bytes()):
        assert classify(raw).verdict is ReplyVerdict.OPT_OUT
    quoted_only = HTML.replace("<p>Please unsubscribe me.</p>", "<p>Sounds good.</p>")
    assert classify(reply("", html=quoted_only)).verdict is ReplyVerdict.NONE


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"Auto_Submitted": "auto-generated"},
    {"X_Autoreply": "yes"}, {"Precedence": "bulk"},
    {"Subject": "Automatic reply: Quick question"}, {"Subject": "Abwesenheitsnotiz: Frage"},
])
def test_an_auto_reply_never_suppresses_whatever_it_says(headers: dict):
    text = "This person has left. Please remove this address from your mailing lists."
    assert classify(reply(text, **headers)).verdict is ReplyVerdict.AUTO_REPLY


def test_auto_submitted_no_is_a_person():
    assert classify(reply("Unsubscribe.", Auto_Submitted="no")).verdict is ReplyVerdict.OPT_OUT


def test_a_message_that_is_no_reply_is_not_judged():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@x.example", "jamie@acme.example", "Hello"
    msg.set_content("Please unsubscribe me.")
    assert classify(msg.as_bytes()).verdict is ReplyVerdict.NOT_A_REPLY


def test_across_the_corpus_no_auto_reply_and_no_other_reply_is_suppressed():
    """The safety half of the goal, on the development half. The held-out half is measured
    by the bench (bench/optout_classifier.py), not here: a test failing on one of its
    messages would show it, and it would no longer be unseen."""
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["label"] != "opt-out" and row["split"] == "dev":
            result = classify(row["eml"].encode())
            assert result.verdict is not ReplyVerdict.OPT_OUT, (row["id"], result)
