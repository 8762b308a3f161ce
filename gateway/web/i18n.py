"""The unsubscribe page's words in the seven languages the gateway reads opt-outs in.

`pick()` reads Accept-Language (RFC 9110 s 12.5.4): the highest-weighted language we have,
by primary subtag; English otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT = "en"

TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "question": "Stop emails from {sender} to {address}?",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done": "{sender} will not send email to {address} again.",
        "receipt": "Your signed receipt (keep it as proof)",
        "invalid_title": "This unsubscribe link is not valid",
        "invalid": "The link may be incomplete. Open it again from the email, or reply to the "
                   "email and ask to be removed.",
        "busy_title": "Please try again",
        "busy": "Your request could not be recorded just now. Please try again in a minute.",
    },
    "de": {
        "title": "Abmelden",
        "question": "Keine E-Mails mehr von {sender} an {address}?",
        "button": "Abmelden",
        "done_title": "Sie sind abgemeldet",
        "done": "{sender} sendet keine E-Mails mehr an {address}.",
        "receipt": "Ihre signierte Bestätigung (als Nachweis aufbewahren)",
        "invalid_title": "Dieser Abmeldelink ist ungültig",
        "invalid": "Der Link ist womöglich unvollständig. Öffnen Sie ihn erneut aus der E-Mail "
                   "oder antworten Sie auf die E-Mail und bitten Sie um Austragung.",
        "busy_title": "Bitte versuchen Sie es erneut",
        "busy": "Ihre Anfrage konnte gerade nicht gespeichert werden. Bitte versuchen Sie es "
                "in einer Minute erneut.",
    },
    "fr": {
        "title": "Se désabonner",
        "question": "Ne plus recevoir d’e-mails de {sender} à l’adresse {address} ?",
        "button": "Se désabonner",
        "done_title": "Vous êtes désabonné",
        "done": "{sender} n’enverra plus d’e-mails à {address}.",
        "receipt": "Votre reçu signé (à conserver comme preuve)",
        "invalid_title": "Ce lien de désabonnement n’est pas valide",
        "invalid": "Le lien est peut-être incomplet. Ouvrez-le de nouveau depuis l’e-mail, ou "
                   "répondez à l’e-mail pour demander à être retiré.",
        "busy_title": "Veuillez réessayer",
        "busy": "Votre demande n’a pas pu être enregistrée. Veuillez réessayer dans une minute.",
    },
    "es": {
        "title": "Darse de baja",
        "question": "¿Dejar de recibir correos de {sender} en {address}?",
        "button": "Darse de baja",
        "done_title": "Se ha dado de baja",
        "done": "{sender} no volverá a enviar correos a {address}.",
        "receipt": "Su recibo firmado (consérvelo como prueba)",
        "invalid_title": "Este enlace para darse de baja no es válido",
        "invalid": "Puede que el enlace esté incompleto. Ábralo de nuevo desde el correo o "
                   "responda al correo y pida que le den de baja.",
        "busy_title": "Inténtelo de nuevo",
        "busy": "No se pudo registrar su solicitud. Inténtelo de nuevo dentro de un minuto.",
    },
    "it": {
        "title": "Annulla iscrizione",
        "question": "Non ricevere più email da {sender} all’indirizzo {address}?",
        "button": "Annulla iscrizione",
        "done_title": "Iscrizione annullata",
        "done": "{sender} non invierà più email a {address}.",
        "receipt": "La sua ricevuta firmata (da conservare come prova)",
        "invalid_title": "Questo link di disiscrizione non è valido",
        "invalid": "Il link potrebbe essere incompleto. Aprilo di nuovo dall’email, oppure "
                   "rispondi all’email e chiedi di essere rimosso.",
        "busy_title": "Riprova",
        "busy": "Non è stato possibile registrare la richiesta. Riprova tra un minuto.",
    },
    "pt": {
        "title": "Cancelar inscrição",
        "question": "Deixar de receber e-mails de {sender} em {address}?",
        "button": "Cancelar inscrição",
        "done_title": "Inscrição cancelada",
        "done": "{sender} não enviará mais e-mails para {address}.",
        "receipt": "O seu recibo assinado (guarde-o como prova)",
        "invalid_title": "Este link de cancelamento não é válido",
        "invalid": "O link pode estar incompleto. Abra-o novamente a partir do e-mail ou "
                   "responda ao e-mail pedindo a remoção.",
        "busy_title": "Tente novamente",
        "busy": "Não foi possível registar o seu pedido. Tente novamente dentro de um minuto.",
    },
    "nl": {
        "title": "Afmelden",
        "question": "Geen e-mails meer van {sender} naar {address}?",
        "button": "Afmelden",
        "done_title": "U bent afgemeld",
        "done": "{sender} stuurt geen e-mails meer naar {address}.",
        "receipt": "Uw ondertekende bevestiging (bewaar deze als bewijs)",
        "invalid_title": "Deze afmeldlink is niet geldig",
        "invalid": "De link is mogelijk onvolledig. Open hem opnieuw vanuit de e-mail, of "
                   "beantwoord de e-mail en vraag om verwijdering.",
        "busy_title": "Probeer het opnieuw",
        "busy": "Uw verzoek kon nu niet worden vastgelegd. Probeer het over een minuut opnieuw.",
    },
}


def pick(accept_language: str | None) -> str:
    """The best language of ours for an Accept-Language header."""
    best, best_q = DEFAULT, 0.0
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        q -= position * 1e-6  # earlier wins a tie
        if primary in TEXTS and q > best_q:
            best, best_q = primary, q
    return best
