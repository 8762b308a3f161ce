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


class ReplyVerdict(Enum):
    OPT_OUT = "opt-out"  # suppress now
    POSSIBLE = "possible-opt-out"  # a person decides
    NONE = "none"
    AUTO_REPLY = "auto-reply"  # never suppresses
    NOT_A_REPLY = "not-a-reply"


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: ReplyVerdict
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
    r"|\bin plaats van mij te verwijderen\b|\bweer toevoegen\b"
    # "don't stop the emails"
    r"|\b(don't|do not) stop\b|\bhören sie nicht auf\b|\bn'arrêtez pas\b|\bno dejen de\b"
    r"|\bnon smettete\b|\bnão (deixem|parem) de\b|\bstop niet\b")

_ME_EN = r"(me|my (e-?mail|email address|address|details|data))"
_REQUEST = {
    "en": [
        rf"\b(remove|delete|take|drop|erase)\b.{{0,12}}\b{_ME_EN}\b",
        r"\bopt(ed)?[- ]?(me )?out\b",
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
        r"\bkeine (weiteren |weitere )?(e-?mails?|mails?|nachrichten|zusendungen|werbung|"
        r"newsletter)\b",
        r"\b(hören|hört) sie\b.{0,30}\bauf\b", r"\bnicht mehr\b.{0,30}\b(kontaktieren|schreiben|"
        r"anschreiben|mailen|zusenden|senden|erhalten)\b",
        r"\b(schreiben|mailen|kontaktieren) sie mi(r|ch) (nie wieder|nicht mehr)\b",
        r"\bwiderspreche\b", r"\bin ruhe\b", r"\bkeine?n? weiteren kontakt\b",
        r"\bzusendungen? (einstellen|ein)\b|\bstellen sie die zusendung",
        r"\b(abzusehen|sehen sie von)\b", r"\bverzichte auf weitere\b",
        r"\b(nie wieder|nicht mehr) (schreiben|mailen|kontaktieren)\b",
        r"\bnicht mehr (erhalten|bekommen|zugeschickt|zusenden)\b",
        r"\b(sofort|umgehend|unverzüglich) (löschen|entfernen)\b",
        r"\blöschen sie (sie|diese|meine)\b",
    ],
    "fr": [
        r"\b(retirer|retirez|supprimer|supprimez|enlever|enlevez|désinscrire|désinscrivez|"
        r"désabonner|désabonnez|radier|radiez|effacer|effacez)\b.{0,6}\b(moi|mon adresse|"
        r"mes coordonnées)\b",
        r"\bme (retirer|supprimer|enlever|désinscrire|désabonner|radier)\b",
        r"\bne (m'|me )?(écrivez|contactez|envoyez|sollicitez) (plus|jamais)\b",
        r"\bne plus (m'|me )(écrire|envoyer|contacter|solliciter)\b",
        r"\barrêtez (de|les) (m'|me )?(écrire|envoyer|spammer|contacter|mails|e-mails)\b",
        r"\bplus d'e-?mails?\b", r"\bne (souhaite|veux|désire) plus (recevoir|entendre)\b",
        r"\bcesser\b.{0,20}\b(communication|envoi|m'écrire)\b", r"\b(la paix|tranquille)\b",
        r"\bne plus (recevoir|etre contacte)",
        r"\bm'(enlever|retirer|effacer|desinscrire|desabonner|oublier)\b",
        r"\bcesse[rz]? de m'?(envoyer|écrire|contacter|solliciter)\b",
        r"\b(supprimez|effacez)-(la|les|le)\b",
    ],
    "es": [
        r"\b(elimin|quit|borr|saqu|sac)\w*(me|nos)\b",
        r"\b(eliminen|borren|quiten) mi (dirección|correo|email)\b",
        r"\bno me (escriban|contacten|envíen|manden|vuelvan)\b",
        r"\bdejen de (enviarme|mandarme|escribirme|contactarme|enviar|mandar)\b",
        r"\bno (deseo|quiero) (recibir|saber)\b", r"\bno más (correos|emails|mensajes)\b",
        r"\bcesen\b.{0,20}\bcomunicación\b", r"\babsteng\w+ de contactarme\b",
        r"\ben paz\b", r"\bno recibir (mas|ningun)",
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
        r"\bin pace\b", r"\binterrompere l'invio\b",
        r"\bnon ricevere (piu|altr)", r"\bnon (scrivermi|contattarmi) piu\b",
    ],
    "pt": [
        r"\b(removam|tirem|apaguem|retirem|excluam)-me\b|\bme (tirem|removam|excluam|"
        r"descadastr\w*)\b",
        r"\bcancelar (a )?(minha )?inscrição\b",
        r"\bnão me (escrevam|contactem|contatem|enviem|mandem)\b",
        r"\bnão (voltem a )?(contactar|contatar)-me\b",
        r"\bparem (de|com)\b.{0,20}\b(enviar|mandar|escrever|spam|e-mails)\b",
        r"\bnão (desejo|quero) (receber|mais)\b", r"\bchega de (e-?mails|mensagens)\b",
        r"\bcessem\b.{0,20}\bcomunicação\b", r"\babstenham de me contactar\b",
        r"\bem paz\b", r"\bdeixem de me enviar\b",
        r"\b(apaguem|removam) o meu endereço\b", r"\bnao receber mais\b",
        r"\bnao (quero|desejo) (mais )?receber\b",
        r"\b(apaguem|removam)(-no|-o)? (já|agora|imediatamente)\b",
    ],
    "nl": [
        r"\b(verwijder|haal|schrap)\b.{0,6}\b(mij|me|mijn (e-?mail)?adres)\b",
        r"\b(mij|me) (verwijderen|afmelden|uitschrijven)\b",
        r"\bschrijf (mij|me) uit\b",
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
# A removal verb near what it removes (the writer, their address or data, from the list),
# in either order: the shape most requests take, whatever the exact words.
_REMOVE = {
    "en": (r"remov\w*|delet\w*|eras\w*|take\w* (me )?off|drop\w*|unsubscrib\w*|wipe\w*",
           r"\bme\b|\bmy (e-?mail|address|details|data|contact\w*|information|name)\b"
           r"|\bthis (e-?mail )?address\b|\b(your|this|the) (list|database|mailing\w*)\b"),
    "de": (r"entfern\w*|lösch\w*|streich\w*|austrag\w*|abmeld\w*",
           r"\bmich\b|\bmeine (e-mail-)?(adresse|daten|kontaktdaten)\b|\bdiese adresse\b"
           r"|\b(ihrem|ihrer|dem|der) (verteiler|liste|datenbank|kontaktliste|newsletter)\b"),
    "fr": (r"retir\w*|supprim\w*|effac\w*|enlev\w*|désinscri\w*|désabonn\w*|radi\w*",
           r"\bmoi\b|\bme\b|\bm'|\bmon (adresse|e-?mail|nom)\b"
           r"|\bmes (coordonnées|données)\b|\b(votre|vos|cette) (liste|fichier|base)\b"),
    "es": (r"elimin\w*|borr\w*|quit\w*|saqu\w*|supri\w*|denme de baja|darme de baja",
           r"\bme\b|\bmis (datos|datos de contacto)\b|\bmi (dirección|correo|nombre)\b"
           r"|\b(su|sus|esta) (lista|base|envíos|boletín)\b"),
    "it": (r"cancell\w*|rimuov\w*|rimoss\w*|togli\w*|elimin\w*|disiscriv\w*",
           r"\bmi\b|\bmio (indirizzo|nome)\b|\bmiei (dati|recapiti)\b"
           r"|\b(vostra|questa) (lista|mailing list|archivio)\b|\bmailing list\b"),
    "pt": (r"remov\w*|retir\w*|apag\w*|tirem|elimin\w*|exclu\w*|descadastr\w*",
           r"\bme\b|-me\b|\b(os )?meus dados\b|\b(o )?meu (endereço|e-?mail|nome)\b"
           r"|\b(vossa|desta|da) (lista|base)\b|\bvossos envios\b"),
    "nl": (r"verwijder\w*|haal|halen|wis|schrap\w*|afmeld\w*|uitschrijv\w*",
           r"\bmij\b|\bme\b|\bmijn (gegevens|adres|e-?mailadres|naam|contactgegevens)\b"
           r"|\bdit adres\b|\b(deze|uw|jullie) (lijst|mailinglijst|contactlijst|systeem"
           r"|bestand)\b"),
}
for _lang, (_verbs, _objects) in _REMOVE.items():
    # within one clause: no comma and no "and" between ("remove Jane from the CC and keep
    # me" is not about the writer)
    _GAP = r"(?:(?!\b(?:and|und|et|y|e|en|ma|but|aber|mais|pero|maar)\b)[^,;.!?]){0,40}"
    _REQUEST[_lang].append(rf"\b({_verbs})\b{_GAP}({_objects})|({_objects}){_GAP}\b({_verbs})\b")

# Asking not to be written to again, without a removal verb.
_NO_MORE = {
    "en": [r"\b(rather|prefer) not (to )?(get|receive|be contacted|hear)\b",
           r"\bnot to (e-?mail|contact|write to|message) me\b",
           r"\b(don't|do not) (send|include|contact|email|e-mail) (me|anything|this address)\b",
           r"\b(no longer|don't|do not) (want|wish) (these|to receive|further|any)\b",
           r"\bstop (the|these|your) (e-?mails|emails|messages|mailings)\b",
           r"\b(request|ask\w*) (you )?(to stop|not to)\b",
           r"\benough (e-?mails|emails|messages)\b",
           r"\bno further (correspondence|contact|e-?mails|emails|messages)\b",
           r"\bnot (being|be|to be) contacted\b",
           r"\b(want|get) (me )?out of (this|your|the) (list|mailing)",
           r"\bleave me out\b", r"\bno more follow-?ups\b"],
    "de": [r"\bnicht (mehr|wieder)\b.{0,20}\b(schreiben|anschreiben|kontaktieren|senden"
           r"|zuschicken|mailen)\b|\b(schreiben|mailen|senden) sie mir\b.{0,20}\bnicht\b",
           r"\bsehen sie\b.{0,40}\bab\b", r"\bkeine (mails|e-mails|nachrichten) mehr\b",
           r"\bnicht (mehr )?angeschrieben\b", r"\bversand an mich ein\b",
           r"\bgenug (mails|e-mails|nachrichten)\b",
           r"\bkeine weitere\w* (korrespondenz|kontakt\w*|mails|e-mails|nachrichten)\b",
           r"\bmelden sie mich\b.{0,40}\bab\b",
           r"\baus (dieser|der|ihrer) (mailingliste|liste|verteilerliste) raus\b",
           r"\bohne mich\b", r"\bkeine weiteren nachfass\w*\b",
           r"\bnicht (erneut|nochmal|noch einmal) zu (kontaktieren|schreiben|mailen)\b",
           r"\b(diese|die|ihre) (mails|e-mails|zusendungen) einstellen\b"],
    "fr": [r"\binutile de me (recontacter|relancer|réécrire|écrire)\b",
           r"\bcess(er|ez) (vos|les|d') ?envois\b", r"\bne plus me (relancer|solliciter)\b",
           r"\bn'envoyez (plus|rien)\b", r"\bne (m'|me )?incluez pas\b",
           r"\b(ne plus|pas) (être|etre) (sollicité|contacté)",
           r"\bassez de (mails|e-mails|messages|courriels)\b",
           r"\bne (souhaite|veux|désire) pas (recevoir|être contacté)\b",
           r"\bsortir de (cette|votre|la) (liste|liste de diffusion)\b",
           r"\bm'exclure\b", r"\bplus de relances\b"],
    "es": [r"\bno hace falta que me (escriban|contacten)\b",
           r"\bno (me )?(incluyan|envíen|manden)\b", r"\bno (vuelvan|volvieran) a\b",
           r"\b(dejen|dejar) de (escribirme|enviarme|contactarme)\b",
           r"\bno (deseo|quiero) recibir\b",
           r"\bbasta de (correos|mensajes|e-?mails)\b",
           r"\bsalir de (esta|su|la) lista\b", r"\bdéjenme fuera\b",
           r"\bnada de más seguimientos\b"],
    "it": [r"\bnon serve che mi\b", r"\bnon (includetemi|inviate|mandate)\b",
           r"\bnon (mi )?contatt\w* più\b", r"\binterrompere gli invii\b",
           r"\bnon (desidero|voglio) (più )?(ricevere|altre)\b",
           r"\b(di )?non ricontattarmi\b", r"\blasciatemi fuori\b",
           r"\bniente più solleciti\b", r"\buscire da (questa|la vostra) (lista|mailing list)\b"],
    "pt": [r"\bnão é preciso (voltarem a )?escrever\w*\b",
           r"\bnão (me )?(incluam|enviem|mandem)\b", r"\bnão voltassem a\b",
           r"\bdeix\w+ de me (escrever|enviar|contactar)\b",
           r"\bnão (receber|quero receber|desejo receber)\b",
           r"\bsair (desta|da vossa|da) lista\b", r"\bdeixem-me fora\b",
           r"\bchega de seguimentos\b"],
    "nl": [r"\bhoeft (mij|me)\b.{0,30}\bniet meer\b", r"\bneem (mij|me) niet\b",
           r"\bvan (deze|de|jullie|uw) lijst af\b", r"\bstop\w*\b.{0,20}\bmet mailen\b",
           r"\bstuur (niets|geen)\b", r"\bgeen (contact|correspondentie|berichten) meer\b",
           r"\bgenoeg (mails|e-mails|berichten)\b",
           r"\bgeen verdere (correspondentie|mails|e-mails|berichten|contact)\b",
           r"\buit (deze|de|uw|jullie) (mailinglijst|lijst)\b",
           r"\blaat (mij|me)\b.{0,20}\bbuiten\b",
           r"\b(schrijf|mail) (mij|me) niet (opnieuw|nog eens|meer)\b", r"\bhou op met mailen\b",
           r"\bgeen opvolg\w* meer\b"],
}
for _lang, _patterns in _NO_MORE.items():
    _REQUEST[_lang].extend(_patterns)

_REQUESTS = [(lang, i, _rx(p)) for lang, patterns in _REQUEST.items()
             for i, p in enumerate(patterns)]

# A word that names the request without saying it ("unsubscribe", "baja"): a request when
# it is all the reply says, a person's call in a longer one ("the unsubscribe link is
# broken, but I did not want to unsubscribe").
_WEAK = _rx(
    r"\bunsubscrib\w*|\babmeld\w*|\babbestell\w*|\baustrag\w*|\bdésabonn\w*|\bdésinscri\w*"
    r"|\bplus jamais\b|\bbaja\b|\bnunca más\b|\bmai più\b|\bdisiscri\w*|\bdescadastr\w*"
    r"|\bnunca mais\b|\bafmeld\w*|\buitschrijv\w*|\bstop\b|\bstopp\b")
WEAK_WORDS = 6  # a weak word in a sentence this short is a request

# Words around asking to stop, in any of the languages: no rule above matched, so a person
# reads it ("possible opt-out"). Recall counts these; precision does not.
_CUE = _rx(
    r"\b(remov\w*|delet\w*|take (me|my \w+) off|off (your|the|this) list|mailing list"
    r"|no (more|further)|any ?more|not (to )?(get|receive|hear|email|contact|write)\w*"
    r"|(don't|do not) (email|contact|write|send|include)|further (emails|correspondence)"
    r"|entfern\w*|lösch\w*|streich\w*|verteiler|nicht (mehr|wieder)|keine \w+ mehr"
    r"|sehen sie\b.*\bab\b|absehen|unterlassen|kontaktaufnahme"
    r"|retir\w*|supprim\w*|effac\w*|enlev\w*|radi\w*|cess\w*|arrêt\w*|ne plus"
    r"|inutile de me|ne \w+ plus|recontact\w*|relanc\w*|sollicit\w*"
    r"|elimin\w*|borr\w*|quít\w*|saqu\w*|dej\w+ de|no (me )?(escriban|contacten|envíen"
    r"|incluyan|manden)|no \w+ más|más (correos|mensajes|ofertas)|no hace falta que"
    r"|no vuelv\w*|cancell\w*|rimuov\w*|rimoss\w*|togli\w*|smett\w*|basta"
    r"|non \w+ più|più (email|mail|messaggi)|non (includetemi|scrivetemi|contattatemi"
    r"|inviate)|non serve che|apag\w*|tirem|tir\w+ o meu|cancel\w*|parem|deix\w+ de"
    r"|não \w+ mais|mais (e-?mails|mensagens)|não (me )?(escrevam|contactem|enviem|incluam)"
    r"|não é preciso|voltem a|verwijder\w*|haal \w+ (eraf|van|uit)|van (deze|de|jullie|uw)"
    r" lijst|\bwis\b|niet meer|geen \w+ meer|hoeft \w+ niet|stop\w*"
    r"|noch eine (mail|e-mail)|one more (e-?mail|email)|warnung|warning)")

# What makes a matched request a person's call: talk of the link, the footer, a colleague
# or an address change; or a negation just before the request, in its sentence ("I did not
# want to unsubscribe", "je ne voulais pas me désinscrire", "ik wilde me niet afmelden").
_HEDGE = _rx(r"\b(link|footer|button|knopf|lien|bouton|enlace|botón|pulsante|botão|knop"
             r"|colleague|kolleg\w*|collègue|compañer\w*|collega|colega|instead|stattdessen"
             r"|plutôt|en lugar|invece|em vez|in plaats"
             # someone else taken off a thread, the writer kept on it
             r"|cc|copie|copia|cópia|in the loop|keep me|dans la boucle|weiter informieren"
             r"|op de hoogte|informato|informado"
             # talk of clicking, or of something done by accident
             r"|click\w*|cliqu\w*|geklickt|klick\w*|puls\w*|clicc\w*|carreg\w*|klikt\w*"
             r"|by accident|by mistake|sans faire exprès|aus versehen|versehentlich|sin querer"
             r"|per sbaglio|sem querer|per ongeluk|par erreur|por error|por engano)\b"
             r"|\b\w*link\b")
_NEGATED = _rx(r"\b(not|never|nicht|nie|kein\w*|pas|jamais|no|nunca|non|mai|não|niet|nooit"
               r"|geen)\b|n't\b")
_CLAUSE_END = re.compile(r"[.!?;,]")
_ALONE = _rx(r"^(stop|stopp|baja|sair|unsubscribe|afmelden|abmelden|austragen|remove|"
             r"désabonnement|cancellami|cancelar)[.! ]*$")

CONFIDENT_WORDS = 40  # a request in a reply longer than this goes to a person


def _sentence_at(text: str, position: int) -> str:
    """The sentence around `position` (ending at . ! or ?)."""
    start = max(text.rfind(mark, 0, position) for mark in ".!?") + 1
    ends = [i for i in (text.find(mark, position) for mark in ".!?") if i >= 0]
    return text[start:min(ends) + 1 if ends else len(text)]


def _negated(text: str, start: int) -> bool:
    """A negation in the few words before `start`, within its clause."""
    before = text[max(0, start - 40):start]
    clause = _CLAUSE_END.split(before)[-1]
    return bool(_NEGATED.search(clause))


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# "Stop. Emailing. Me.": full stops between words, as emphasis
_EMPHASIS = re.compile(r"(?<=\w)[.!]+(?= \w)")


def request_rule(words: str) -> tuple[ReplyVerdict, str]:
    """The verdict on a reply's own words (lines as own_words gives them).

    Automatic only for a request rule's match in a short reply that asks nothing and
    hedges nothing; a weak word only when it is nearly all the reply says. Everything
    else that looks like asking to stop goes to a person."""
    lines = fold(words).splitlines()
    words = " ".join(lines)
    if not words:
        return ReplyVerdict.NONE, "empty"
    if _NOT_A_REQUEST.search(words):
        return ReplyVerdict.NONE, "not-a-request"
    if _ALONE.match(words):
        return ReplyVerdict.OPT_OUT, "alone"
    hedged = bool(_HEDGE.search(words))
    if not hedged and any(_ALONE.match(sentence) for line in lines
                          for sentence in _SENTENCE.split(line)):
        # "STOP" on its own line between hello and bye, or as a sentence of its own
        return ReplyVerdict.OPT_OUT, "alone-sentence"
    flat = _EMPHASIS.sub("", words)
    found = []
    for lang, i, pattern in _REQUESTS:
        for text in (words, flat):
            match = pattern.search(text)
            if match is not None:
                found.append((lang, i, _negated(text, match.start())))
                break
    short = len(words.split()) <= CONFIDENT_WORDS and "?" not in words
    if found:
        lang, i, negated = found[0]
        rule = f"request:{lang}:{i}"
        negated = all(n for _, _, n in found)  # one plain match is a request
        if short and not hedged and not negated:
            return ReplyVerdict.OPT_OUT, rule
        return ReplyVerdict.POSSIBLE, rule + (":hedged" if hedged or negated else "")
    weak = _WEAK.search(flat)
    if weak is not None:
        sentence = _sentence_at(flat, weak.start())
        if len(sentence.split()) <= WEAK_WORDS and not hedged and "?" not in sentence \
                and not _negated(flat, weak.start()):
            return ReplyVerdict.OPT_OUT, "weak-word"
        return ReplyVerdict.POSSIBLE, "weak-word"
    if _CUE.search(flat):
        return ReplyVerdict.POSSIBLE, "cue"
    return ReplyVerdict.NONE, "no-request"


def classify(raw: bytes) -> Classification:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    auto = auto_reply_rule(msg)
    if auto is not None:
        return Classification(ReplyVerdict.AUTO_REPLY, auto)
    if not is_reply(msg):
        return Classification(ReplyVerdict.NOT_A_REPLY, "no-thread")
    words = own_words(body_text(msg))
    if _AUTO_BODY.search(fold(words).replace("\n", " ")):
        return Classification(ReplyVerdict.AUTO_REPLY, "body:auto-reply")
    verdict, rule = request_rule(words)
    return Classification(verdict, rule)
