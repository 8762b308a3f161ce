"""The lawful-basis table and its signals against a corpus of recipients across the table's
countries, kinds and signal sources, each with the decision counsel's table gives."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from gateway.errors import InvalidValue
from gateway.lawful import table as lawful_table
from gateway.lawful.signals import Attributes, Source, decide, tld_country
from gateway.lawful.table import Decision, Kind

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "lawful" / "corpus.csv"
SHIPPED = ROOT / "deploy" / "lawful-basis.toml"  # the operator's way to it (a link)


def shipped() -> lawful_table.Table:
    return lawful_table.parse(SHIPPED.read_text(), str(SHIPPED))


def corpus() -> list[dict[str, str]]:
    with CORPUS.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("case", corpus(), ids=lambda c: f"{c['address']}:{c['why']}")
def test_the_corpus_gets_the_tables_decisions(case):
    attributes = None
    if case["record_country"] or case["record_kind"]:
        attributes = Attributes(case["record_country"] or None,
                                Kind.parse(case["record_kind"]) if case["record_kind"] else None)
    said = None
    if case["stated_country"] or case["stated_kind"]:
        said = Attributes(case["stated_country"] or None,
                          Kind.parse(case["stated_kind"]) if case["stated_kind"] else None)
    verdict = decide(shipped(), case["address"], attributes, case["consent"] == "yes",
                     Decision(case["tenant_default"]) if case["tenant_default"] else None,
                     said)
    assert (verdict.decision.value, verdict.source.value, verdict.sends) == (
        case["decision"], case["source"], case["sends"] == "yes")


def test_the_corpus_covers_every_country_kind_and_source():
    cases = corpus()
    table = shipped()
    placed = {c["record_country"].upper().replace("UK", "GB") for c in cases} | {
        tld_country(c["address"]) for c in cases}
    assert set(table.countries) <= placed
    assert {c["record_kind"] for c in cases} >= {"named", "generic", "sole_trader"}
    assert {c["source"] for c in cases} == {s.value for s in Source}
    assert {c["decision"] for c in cases} >= {"allow", "allow-with-notice", "require-consent"}


def test_the_shipped_table_marks_what_is_unverified():
    table = shipped()
    assert {c for c, row in table.countries.items() if not row.verified} == {
        "IE", "FI", "IT", "DK", "BE", "NL"}
    assert table.countries["DE"].source.startswith("UWG")


@pytest.mark.parametrize("text, says", [
    ("", "`id` names the table"),
    ('id = "x"\n', "a [default] row is needed"),
    ('id = "x"\n[default]\nnamed = "allow"\ngeneric = "allow"\nsole_trader = "maybe"\n'
     'source = "s"\nverified = true\n', "sole_trader: one of allow"),
    ('id = "x"\n[default]\nnamed = "allow"\ngeneric = "allow"\nsole_trader = "allow"\n'
     'verified = true\n', "source: say what the row rests on"),
    ('id = "x"\n[default]\nnamed = "allow"\ngeneric = "allow"\nsole_trader = "allow"\n'
     'source = "s"\nverified = "yes"\n', "verified: true or false"),
    ('id = "x"\n[default]\nnamed = "allow"\ngeneric = "allow"\nsole_trader = "allow"\n'
     'source = "s"\nverified = true\n[countries.GER]\n', "not an ISO 3166-1 alpha-2 code"),
    ("id = [\n", "not TOML"),
])
def test_a_bad_table_is_refused_naming_the_place(text, says):
    with pytest.raises(InvalidValue, match=re.escape(says)):
        lawful_table.parse(text)


@pytest.mark.parametrize("address, country", [
    ("a@b.de", "DE"), ("a@b.co.uk", "GB"), ("a@B.FR.", "FR"), ("a@b.io", None),
    ("a@b.com", None), ("a@b.eu", None), ("a@b.xn--p1ai", None), ("a@localhost", None),
])
def test_a_cctld_names_a_country_and_a_generic_one_nobody(address, country):
    assert tld_country(address) == country


def test_the_docs_show_the_shipped_table():
    from gateway.lawful.reference import markdown

    page = ROOT / "docs" / "lawful-basis.md"
    assert page.read_text() == markdown(), "docs/lawful-basis.md is stale: run 'make docs'"
    assert "| IT | `require-consent` | `require-consent` | `require-consent` | secondary " \
           "sources or none | **unverified** |" in page.read_text()
    assert "Not legal advice" in page.read_text()
