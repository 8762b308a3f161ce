"""The labelled reply corpus is what its builder makes, is as large as the issue asks (at
least 1,000 messages, at least 50 per language and label) and is split so that no phrase of
the held-out half appears in the development half: the held-out half of record is built from
the last round's phrase bank alone (phrases_round5.py), which shares no phrase with the
development banks (phrases.py and the earlier rounds' banks, once held out themselves)."""

from __future__ import annotations

import collections
import importlib.util
import json
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "replies"


def _builder():
    sys.path.insert(0, str(CORPUS))
    try:
        spec = importlib.util.spec_from_file_location("reply_corpus_build", CORPUS / "build.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(CORPUS))


def test_the_committed_corpus_is_what_the_builder_makes():
    committed = [json.loads(line) for line in
                 (CORPUS / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert committed == _builder().build()


def test_size_languages_labels_and_splits():
    rows = [json.loads(line) for line in
            (CORPUS / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 1000
    cells = collections.Counter((r["language"], r["label"]) for r in rows)
    assert set(lang for lang, _ in cells) == {"en", "de", "fr", "es", "it", "pt", "nl"}
    assert set(label for _, label in cells) == {"opt-out", "not-opt-out", "auto-reply"}
    assert min(cells.values()) >= 50
    halves = collections.Counter((r["language"], r["label"], r["split"]) for r in rows)
    assert {n for (_, _, split), n in halves.items() if split == "dev"} == {150}
    assert {n for (_, _, split), n in halves.items() if split == "held-out"} == {30}
    assert len({r["id"] for r in rows}) == len(rows)


def test_no_held_out_phrase_is_in_the_development_half():
    builder = _builder()
    for lang, bank in builder.PHRASES.items():
        for kind in builder.LABELS:
            # both halves of phrases.py and all of rounds 2 to 4 are development now
            dev = set(bank[kind]) | set(builder.HELD_OUT[lang][kind]) \
                | set(builder.ROUND3[lang][kind]) | set(builder.ROUND4[lang][kind])
            held = set(builder.ROUND5[lang][kind])
            assert dev and held and not dev & held, (lang, kind)
            for phrase in held:  # nor inside a longer development phrase
                assert not any(phrase in d or d in phrase for d in dev), (lang, phrase)


def test_earlier_held_out_halves_are_development_data():
    rows = {json.loads(line)["id"]: json.loads(line) for line in
            (CORPUS / "corpus.jsonl").read_text(encoding="utf-8").splitlines()}
    assert rows["en-opt-out-dev-30"]["split"] == rows["en-opt-out-dev-149"]["split"] == "dev"
    assert rows["en-opt-out-held-out-29"]["split"] == "held-out"
    assert "en-opt-out-held-out-30" not in rows and "en-opt-out-dev-150" not in rows
