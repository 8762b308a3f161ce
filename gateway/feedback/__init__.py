"""Evidence from outside: bounces, complaints and replies read from the mailboxes (IMAP),
mailed to the unsubscribe address or to VERP return paths, parsed (`reports.py`, DSN and
ARF), classified (`reply_classifier.py`), matched to the copy they answer (`sent.py`) and
turned into opt-outs through `optout/`, the one writer of suppression entries."""
