"""Is this reply to outreach mail a request to stop? Rules, in seven languages.

A reply's own words are what count: the quoted history below it (which ends with our own
footer's "unsubscribe" link), its signature and "Sent from my iPhone" are cut off first.
Auto-replies (out-of-office, a departed employee's notice) never opt anyone out, whatever
they say. A request the rules are sure of suppresses at once; one they are unsure of goes to
a person ("possible opt-out"). Words that only look like a request ("please don't remove
me", "how do I unsubscribe my colleague?", "I unsubscribed by mistake") are answered first.

`classify` takes the raw message and returns the verdict and the rule that decided, which is
what the audit trail records as evidence (never the text).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from enum import Enum


class Verdict(Enum):
    OPT_OUT = "opt-out"  # suppress now
    POSSIBLE = "possible-opt-out"  # a person decides
    NONE = "none"
    AUTO_REPLY = "auto-reply"  # never suppresses
    NOT_A_REPLY = "not-a-reply"


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    rule: str  # which rule decided: evidence for the audit trail, never the text


def fold(text: str) -> str:
    """Case and accents folded away ("Quítenme" and "quitenme" match alike), for the text and
    for the patterns both: people type without accents, and phones add them."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(fold(pattern))


# --- auto-replies ------------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|auto|out of (the )?office|away"
    r"|automatische antwort|abwesenheitsnotiz|abwesend|abwesenheit"
    r"|réponse automatique|absence du bureau|absent|absente"
    r"|respuesta automática|fuera de la oficina|ausente"
    r"|risposta automatica|fuori ufficio|assente"
    r"|resposta automática|fora do escritório"
    r"|automatisch antwoord|afwezig|niet aanwezig|afwezigheidsbericht)\s*:", re.IGNORECASE)
_AUTO_BODY = _rx(
    r"out of (the )?office|on (annual|parental|maternity|sick) leave|no longer (works|monitored)"
    r"|has left the company|nicht im büro|im urlaub|in elternzeit|nicht mehr (im unternehmen|"
    r"betreut)|das unternehmen verlassen|absent du bureau|en congés?|ne fait plus partie"
    r"|a quitté l'entreprise|n'est plus consultée|fuera de la oficina|de vacaciones"
    r"|ya no (trabaja|se revisa)|ha dejado la empresa|fuori ufficio|in ferie|non lavora più"
    r"|non è più monitorata|ha lasciato l'azienda|fora do escritório|de férias"
    r"|já não (trabalha|é monitorizada)|saiu da empresa|niet op kantoor|met vakantie"
    r"|werkt hier niet meer|niet meer gelezen|is uit dienst|ouderschapsverlof")


def auto_reply_rule(msg: EmailMessage) -> str | None:
    """Why this message is an automatic one (RFC 3834 and the de-facto headers), or None."""
    submitted = str(msg.get("Auto-Submitted", "")).strip().lower()
    if submitted and submitted != "no":
        return "header:auto-submitted"
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponder"):
        return "header:x-autoreply"
    if str(msg.get("Precedence", "")).strip().lower() in ("bulk", "junk", "list",
                                                          "auto_reply"):
        return "header:precedence"
    if _AUTO_SUBJECT.match(str(msg.get("Subject", ""))):
        return "subject:auto-reply"
    return None


# --- the reply's own words ---------------------------------------------------------------

_QUOTE_HEADER = re.compile(
    r"^(on .+ wrote:|am .+ schrieb .+:|le .+ a écrit ?:|el .+ escribió:|il giorno .+ ha "
    r"scritto:|em .+ escreveu:|op .+ schreef .+:|-{2,}\s*original message\s*-{2,}"
    r"|-{2,}\s*(ursprüngliche nachricht|message d'origine|mensaje original|messaggio "
    r"originale|mensagem original|oorspronkelijk bericht)\s*-{2,}"
    r"|_{10,})\s*$", re.IGNORECASE)
_HEADER_BLOCK = re.compile(r"^(from|von|de|da|van)\s?:\s.+@", re.IGNORECASE)
_SIGNATURE = re.compile(
    r"^(-- ?|sent from my .+|von meinem .+ gesendet|envoyé de mon .+|enviado desde mi .+"
    r"|inviato da .+|enviado do meu .+|verzonden vanaf mijn .+|get outlook for .+)$",
    re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(re|aw|antw|r|rif|ref|sv|vs)\s?:", re.IGNORECASE)


def body_text(msg: EmailMessage) -> str:
    """The reply's text: its plain part, or its HTML part as text when the plain one is
    missing or empty (some mail programs send an empty text/plain alternative)."""
    for preference in (("plain",), ("html",)):
        part = msg.get_body(preferencelist=preference)
        if part is None:
            continue
        try:
            text = str(part.get_content())
        except (LookupError, UnicodeError):
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if part.get_content_subtype() == "html":
            text = re.sub(r"(?is)<(script|style|blockquote).*?</\1>", "", text)
            text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
        if text.strip():
            return text
    return ""


def own_words(text: str) -> str:
    """The text above the quoted history and the signature: its non-empty lines, spaces
    collapsed within each."""
    kept = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith(">") or _QUOTE_HEADER.match(stripped) \
                or _HEADER_BLOCK.match(stripped) or _SIGNATURE.match(line.rstrip()):
            break
        if stripped:
            kept.append(" ".join(stripped.split()))
    return "\n".join(kept)


def is_reply(msg: EmailMessage) -> bool:
    return bool(msg.get("In-Reply-To") or msg.get("References")
                or _REPLY_SUBJECT.match(str(msg.get("Subject", ""))))


# --- requests to stop --------------------------------------------------------------------

# Said first: words that look like a request and are not one.
_NOT_A_REQUEST = _rx(
    r"\b(don't|do not|please don't) (remove|unsubscribe|take) me\b|\bmy colleague\b"
    r"|\b(by mistake|add me back|instead of removing me)\b"
    r"|\bnicht (austragen|abmelden|löschen|entfernen)\b|\b(meine|meinen) (kollegin|kollegen)\b"
    r"|\bversehentlich\b|\bstatt mich zu löschen\b|\bwieder aufnehmen\b"
    r"|\bne me (retirez|désinscrivez|supprimez|désabonnez) pas\b|\b(ma|mon) collègue\b"
    r"|\bpar erreur\b|\bplutôt que de me supprimer\b|\bréinscrire\b"
    r"|\bno me (den|des|dé) de baja\b|\bmi compañer[oa]\b|\bpor error\b"
    r"|\ben lugar de borrarme\b|\bvolver a añadirme\b"
    r"|\bnon (cancellatemi|rimuovetemi|toglietemi)\b|\b(una|un|il mio|la mia) collega\b"
    r"|\bper errore\b|\binvece di cancellarmi\b|\breinserirmi\b"
    r"|\bnão me (removam|tirem|descadastrem)\b|\b(minha|meu) colega\b|\bpor engano\b"
    r"|\bem vez de me apagar\b|\bvoltar a adicionar-me\b"
    r"|\bverwijder (me|mij) niet\b|\bmijn collega\b|\bper ongeluk\b"
    r"|\bin plaats van mij te verwijderen\b|\bweer toevoegen\b")

_ME_EN = r"(me|my (e-?mail|email address|address|details|data))"
_REQUEST = {
    "en": [
        rf"\b(remove|delete|take|drop|erase)\b.{{0,12}}\b{_ME_EN}\b",
        r"\bunsubscribe\b", r"\bopt(ed)?[- ]?(me )?out\b",
        r"\bstop (e-?mailing|emailing|mailing|sending|contacting|writing|spamming|messaging)\b",
        r"\b(do not|don't|never|please don't|please do not) (contact|e-?mail|email|write to|"
        r"message|send)\b.{0,20}\b(me|us)\b",
        r"\bno (more|further) (e-?mails?|emails?|messages|contact)\b",
        r"\b(cease|refrain|desist)\b.{0,30}\b(contact|communication|emailing|e-?mails?)",
        r"\b(prefer|like|want) not to (receive|hear|be contacted)\b",
        r"\b(don't|do not) want to (hear|receive)\b", r"\bgo away\b",
        r"\bleave me alone\b", r"\bwrite to me again\b",
        r"\b(don't|do not) (follow up|reach out|send me)\b", r"\btake me off\b",
        r"\b(no longer|not) (wish|want) to (receive|be contacted|hear)\b",
        r"\bdelete (it|them|my address|my email)\b.{0,12}\b(now|immediately|please)\b",
    ],
    "de": [
        r"\b(entfernen|streichen|löschen|austragen|nehmen|tragen)\b.{0,30}\b(mich|meine "
        r"(e-mail-)?adresse|meine daten)\b",
        r"\bmich\b.{0,30}\b(entfernen|streichen|löschen|austragen|abmelden)\b",
        r"\babmelden\b|\babmeldung\b|\babbestellen\b",
        r"\bkeine (weiteren |weitere )?(e-?mails?|mails?|nachrichten|zusendungen|werbung|"
        r"newsletter)\b",
        r"\b(hören|hört) sie\b.{0,30}\bauf\b", r"\bnicht mehr\b.{0,30}\b(kontaktieren|schreiben|"
        r"anschreiben|mailen|zusenden|senden|erhalten)\b",
        r"\b(schreiben|mailen|kontaktieren) sie mi(r|ch) (nie wieder|nicht mehr)\b",
        r"\bwiderspreche\b", r"\bin ruhe\b", r"\bkeine?n? weiteren kontakt\b",
        r"\bzusendungen? (einstellen|ein)\b|\bstellen sie die zusendung",
        r"\b(abzusehen|sehen sie von)\b", r"\bverzichte auf weitere\b",
        r"\b(nie wieder|nicht mehr) (schreiben|mailen|kontaktieren)\b",
        r"\baustragen\b", r"\bnicht mehr (erhalten|bekommen|zugeschickt|zusenden)\b",
        r"\b(sofort|umgehend|unverzüglich) (löschen|entfernen)\b",
        r"\blöschen sie (sie|diese|meine)\b",
    ],
    "fr": [
        r"\b(retirer|retirez|supprimer|supprimez|enlever|enlevez|désinscrire|désinscrivez|"
        r"désabonner|désabonnez|radier|radiez|effacer|effacez)\b.{0,6}\b(moi|mon adresse|"
        r"mes coordonnées)\b",
        r"\bme (retirer|supprimer|enlever|désinscrire|désabonner|radier)\b",
        r"\bdésabonnement\b|\bdésinscription\b|\bdésinscri(re|vez)\b|\bdésabonner\b",
        r"\bne (m'|me )?(écrivez|contactez|envoyez|sollicitez) (plus|jamais)\b",
        r"\bne plus (m'|me )(écrire|envoyer|contacter|solliciter)\b",
        r"\barrêtez (de|les) (m'|me )?(écrire|envoyer|spammer|contacter|mails|e-mails)\b",
        r"\bplus d'e-?mails?\b", r"\bne (souhaite|veux|désire) plus (recevoir|entendre)\b",
        r"\bcesser\b.{0,20}\b(communication|envoi|m'écrire)\b", r"\b(la paix|tranquille)\b",
        r"\bplus jamais\b", r"\bne plus (recevoir|etre contacte)",
        r"\bm'(enlever|retirer|effacer|desinscrire|desabonner|oublier)\b",
        r"\bcesse[rz]? de m'?(envoyer|écrire|contacter|solliciter)\b",
        r"\b(supprimez|effacez)-(la|les|le)\b",
    ],
    "es": [
        r"\bbaja\b", r"\b(elimin|quit|borr|saqu|sac)\w*(me|nos)\b",
        r"\b(eliminen|borren|quiten) mi (dirección|correo|email)\b",
        r"\bno me (escriban|contacten|envíen|manden|vuelvan)\b",
        r"\bdejen de (enviarme|mandarme|escribirme|contactarme|enviar|mandar)\b",
        r"\bno (deseo|quiero) (recibir|saber)\b", r"\bno más (correos|emails|mensajes)\b",
        r"\bcesen\b.{0,20}\bcomunicación\b", r"\babsteng\w+ de contactarme\b",
        r"\ben paz\b", r"\bnunca más\b", r"\bno recibir (mas|ningun)",
        r"\bno (quiero|deseo) que me (escriban|contacten|envien)\b",
        r"\bno vuelvan a (contactarme|escribirme|enviarme|llamarme)\b",
        r"\b(bórrenla|bórrenlo|elimínenla|elimínenlo)\b",
    ],
    "it": [
        r"\b(cancellatemi|cancellami|cancellarmi|rimuovetemi|rimuovermi|toglietemi|togliermi|"
        r"disiscrivetemi|disiscrivermi|disiscrivimi|eliminatemi)\b",
        r"\b(cancellate|rimuovete|eliminate) il mio indirizzo\b",
        r"\bnon (scrivetemi|inviatemi|contattatemi|mandatemi)\b",
        r"\bsmettete(la)? di (scrivermi|mandarmi|inviarmi|contattarmi|mandare|inviare)\b",
        r"\bnon (desidero|voglio) (più )?(ricevere|avere)\b", r"\bbasta (email|e-mail|mail)\b",
        r"\bcessare\b.{0,20}\bcomunicazione\b", r"\bastenervi dal contattarmi\b",
        r"\bin pace\b", r"\bmai più\b", r"\binterrompere l'invio\b",
        r"\bnon ricevere (piu|altr)", r"\bnon (scrivermi|contattarmi) piu\b",
    ],
    "pt": [
        r"\b(removam|tirem|apaguem|retirem|excluam)-me\b|\bme (tirem|removam|excluam|"
        r"descadastr\w*)\b",
        r"\bdescadastr\w*\b", r"\bcancelar (a )?(minha )?inscrição\b",
        r"\bnão me (escrevam|contactem|contatem|enviem|mandem)\b",
        r"\bnão (voltem a )?(contactar|contatar)-me\b",
        r"\bparem (de|com)\b.{0,20}\b(enviar|mandar|escrever|spam|e-mails)\b",
        r"\bnão (desejo|quero) (receber|mais)\b", r"\bchega de (e-?mails|mensagens)\b",
        r"\bcessem\b.{0,20}\bcomunicação\b", r"\babstenham de me contactar\b",
        r"\bem paz\b", r"\bnunca mais\b", r"\bdeixem de me enviar\b",
        r"\b(apaguem|removam) o meu endereço\b", r"\bnao receber mais\b",
        r"\bnao (quero|desejo) (mais )?receber\b",
        r"\b(apaguem|removam)(-no|-o)? (já|agora|imediatamente)\b",
    ],
    "nl": [
        r"\b(verwijder|haal|schrap)\b.{0,6}\b(mij|me|mijn (e-?mail)?adres)\b",
        r"\b(mij|me) (verwijderen|afmelden|uitschrijven)\b", r"\bafmelden\b",
        r"\bschrijf (mij|me) uit\b|\buitschrijven\b",
        r"\b(mail|e-mail|stuur|schrijf) (mij|me) (niet meer|nooit meer)\b",
        r"\bstop met\b.{0,20}\b(mailen|spammen|sturen|e-mailen)\b",
        r"\bgeen (mails|e-mails|berichten|nieuwsbrieven) meer\b",
        r"\bgeen (e-mails|mails|berichten) meer\b|\bgeen contact meer\b",
        r"\bstaak\b.{0,20}\bcommunicatie\b", r"\bmet rust\b",
        r"\bniets meer van\b", r"\bgeen (berichten|mails|e-mails)\b.{0,30}\bmeer\b",
        r"\bniet meer (ontvangen|mailen|benaderen)\b",
        r"\bverwijder (het|dat|dit adres|mijn gegevens) (meteen|direct|onmiddellijk|nu)\b",
    ],
}
_REQUESTS = [(lang, i, _rx(p)) for lang, patterns in _REQUEST.items()
             for i, p in enumerate(patterns)]
_ALONE = _rx(r"^(stop|stopp|baja|sair|unsubscribe|afmelden|abmelden|austragen|remove|"
             r"désabonnement|cancellami|cancelar)[.! ]*$")

CONFIDENT_WORDS = 40  # a request in a reply longer than this goes to a person


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# "Stop. Emailing. Me.": full stops between words, as emphasis
_EMPHASIS = re.compile(r"(?<=\w)[.!]+(?= \w)")


def request_rule(words: str) -> tuple[Verdict, str]:
    """The verdict on a reply's own words (lines as own_words gives them)."""
    lines = fold(words).splitlines()
    words = " ".join(lines)
    if not words:
        return Verdict.NONE, "empty"
    if _NOT_A_REQUEST.search(words):
        return Verdict.NONE, "not-a-request"
    if _ALONE.match(words):
        return Verdict.OPT_OUT, "alone"
    if any(_ALONE.match(sentence) for line in lines for sentence in _SENTENCE.split(line)):
        # "STOP" on its own line between hello and bye, or as a sentence of its own
        return Verdict.OPT_OUT, "alone-sentence"
    flat = _EMPHASIS.sub("", words)
    found = [(lang, i) for lang, i, pattern in _REQUESTS
             if pattern.search(words) or pattern.search(flat)]
    if not found:
        return Verdict.NONE, "no-request"
    rule = f"request:{found[0][0]}:{found[0][1]}"
    if len(words.split()) > CONFIDENT_WORDS or "?" in words:
        return Verdict.POSSIBLE, rule  # a long reply, or one that asks something: a person
    return Verdict.OPT_OUT, rule


def classify(raw: bytes) -> Classification:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    auto = auto_reply_rule(msg)
    if auto is not None:
        return Classification(Verdict.AUTO_REPLY, auto)
    if not is_reply(msg):
        return Classification(Verdict.NOT_A_REPLY, "no-thread")
    words = own_words(body_text(msg))
    if _AUTO_BODY.search(fold(words).replace("\n", " ")):
        return Classification(Verdict.AUTO_REPLY, "body:auto-reply")
    verdict, rule = request_rule(words)
    return Classification(verdict, rule)
