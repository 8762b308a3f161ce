"""Each setting is described once, where it is declared: the reference page and the
production example are generated from the declarations and kept fresh here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway import config as config_module
from gateway.config import Config
from gateway.config.reference import example, markdown
from gateway.config.schema import settings
from tests.support.config import load

ROOT = Path(__file__).parents[2]


def test_every_setting_has_a_description():
    undescribed = [s.key for s in settings(Config) if not s.doc.strip()]
    assert undescribed == []


def test_every_section_says_what_it_is_for():
    from gateway.config.schema import sections

    assert [key for key, cls in sections(Config) if not (cls.__doc__ or "").strip()] == []


def test_the_reference_page_is_fresh():
    page = ROOT / "docs/configuration.md"
    assert page.read_text() == markdown(), "docs/configuration.md is stale: run 'make docs'"


def test_the_production_example_is_fresh_and_loads():
    path = ROOT / "deploy/production.example.toml"
    assert path.read_text() == example(), "the production example is stale: run 'make docs'"
    assert config_module.load(path, {}).environment == "production"


def test_every_setting_is_on_the_reference_page_with_its_variable_and_default():
    page = markdown()
    for s in settings(Config):
        name = s.key.rsplit(".", 1)[-1]
        assert f"| `{name}`<br>" in page, s.key
        if "[]" not in s.key:
            assert f"`{s.env}`" in page, s.key


def test_the_documented_variable_overrides_the_setting():
    """The variable the page names is the one the loader reads (one per section tried)."""
    tried = 0
    for s in settings(Config):
        if "<name>" in s.key or "[]" in s.key or not isinstance(s.default, int | float) \
                or isinstance(s.default, bool) or s.default <= 0 or s.rule is None:
            continue
        value = s.default + 1 if s.key != "pixels.ipv4_prefix" else 16
        if s.key in ("tenants.max_recipients", "tenants.max_message_size"):
            continue  # bounded by smtp's
        loaded = load(**{s.env: str(value)})
        current = loaded
        for part in s.key.split("."):
            current = getattr(current, part)
        assert current == value, s.key
        tried += 1
    assert tried > 40


def test_defaults_on_the_page_are_the_declared_ones():
    defaults = Config()
    assert dataclasses.asdict(defaults)["smtp"]["max_recipients"] == 100
    assert "| `max_recipients`<br>`GATEWAY__SMTP__MAX_RECIPIENTS` | `100` |" in markdown()
