"""Operator configuration: typed values, environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.errors import ConfigError
from tests.support.config import BASE, load


def test_defaults_are_production_and_typed():
    config = load()
    assert config.environment == "production"
    assert config.smtp.max_recipients == 100
    assert config.upstreams["out"].kind == "maildir"


def test_environment_overrides_toml(tmp_path: Path):
    config = load("[smtp]\nmax_recipients = 70\n", tmp_path, GATEWAY__SMTP__MAX_RECIPIENTS="90")
    assert config.smtp.max_recipients == 90


@pytest.mark.parametrize("env, message", [
    ({"GATEWAY__SMTP__MAX_RECIPIENTS": "lots"},
     "Config 'smtp.max_recipients' has value 'lots'. Not a valid int."),
    ({"GATEWAY__SMTP__MAX_RECIPIENTS": "0"},
     "Config 'smtp.max_recipients' has value 0. Must be greater than 0."),
    ({"GATEWAY__ENVIRONMENT": "staging"},
     "Config 'environment' has value 'staging'. Must be one of 'production', 'development'."),
    ({"GATEWAY__SMTP__NO_SUCH_KEY": "1"}, "Config 'smtp.no_such_key' is not a known setting."),
    ({"GATEWAY__UNSUBSCRIBE__BASE_URL": ""},
     "Config 'unsubscribe.base_url' has value ''. Required: the https:// URL"),
    ({"GATEWAY__UNSUBSCRIBE__BASE_URL": "http://links.example.com"},
     "Config 'unsubscribe.base_url' has value 'http://links.example.com'. Must be an https://"),
    ({"GATEWAY__UNSUBSCRIBE__BASE_URL": "http://127.0.0.1:8080"},
     "Config 'unsubscribe.base_url' has value 'http://127.0.0.1:8080'. Must be an https:// URL "
     "(a loopback http:// URL only with environment = 'development')."),
    ({"GATEWAY__SMTP__TLS_SELF_SIGNED": "true"},
     "Config 'smtp.tls_self_signed' has value True. A self-signed certificate is allowed only"),
    ({"GATEWAY__VAULT__DEV_GENERATE": "true", "GATEWAY__VAULT__MASTER_KEY_FILE": ""},
     "Config 'vault.dev_generate' has value True. The generated development master key is "
     "refused unless environment = 'development'."),
    ({"GATEWAY__SMTP__TLS_CERT": ""}, "Config 'smtp.tls_cert' has value ''. A TLS certificate"),
    ({"GATEWAY__DATABASE__URL": "mysql://x"}, "Config 'database.url' has value 'mysql://x'."),
    ({"GATEWAY__TENANTS__MAX_RECIPIENTS": "500"},
     "Config 'tenants.max_recipients' has value 500. Must be between 1 and smtp.max_recipients"),
    ({"GATEWAY__UPSTREAMS__OUT__KIND": "smtp", "GATEWAY__UPSTREAMS__OUT__HOST": "mx.example.com",
      "GATEWAY__UPSTREAMS__OUT__TLS": "none"},
     "Config 'upstreams.out.tls' has value 'none'. Plain-text upstream connections are allowed "
     "only to a loopback host."),
    ({"GATEWAY__LIMITS__MICROSOFT__MESSAGES_PER_MINUTE": "-1"},
     "Config 'limits.microsoft.messages_per_minute' has value -1. Must be 0 (no limit) or more."),
    ({"GATEWAY__UPSTREAMS__OUT__KIND": "gmail", "GATEWAY__UPSTREAMS__OUT__HOST": "smtp.x.com",
      "GATEWAY__UPSTREAMS__OUT__RETURN_PATH": "verp"},
     "Config 'upstreams.out.return_path' has value 'verp'. Only an smtp upstream lets the "
     "gateway choose the return path"),
    ({"GATEWAY__UPSTREAMS__OUT__KIND": "gmail", "GATEWAY__UPSTREAMS__OUT__HOST": "smtp.x.com",
      "GATEWAY__UPSTREAMS__OUT__IMAP_HOST": "imap.x.com", "GATEWAY__UPSTREAMS__OUT__IMAP_TLS":
      "none"},
     "Config 'upstreams.out.imap_tls' has value 'none'. Plain-text IMAP is allowed only to a "
     "loopback host."),
    ({"GATEWAY__UPSTREAMS__OUT__KIND": "smtp", "GATEWAY__UPSTREAMS__OUT__HOST": "mx.x.com",
      "GATEWAY__UPSTREAMS__OUT__RETURN_PATH": "verp"},
     "Config 'upstreams.out.return_path' has value 'verp'. VERP bounces come back to the "
     "inbound listener; set unsubscribe.mailto_listen."),
    ({"GATEWAY__FEEDBACK__GLOBAL_COMPLAINT_TENANTS": "1"},
     "Config 'feedback.global_complaint_tenants' has value 1. Must be 0 (never automatically) "
     "or at least 2"),
    ({"GATEWAY__FEEDBACK__SOFT_BOUNCES": "0"},
     "Config 'feedback.soft_bounces' has value 0. Must be greater than 0."),
    ({"GATEWAY__RETENTION__AUDIT_DAYS": "0"},
     "Config 'retention.audit_days' has value 0.0. Must be greater than 0."),
    ({"GATEWAY__REVIEW__LOCKOUT_FAILURES": "0"},
     "Config 'review.lockout_failures' has value 0. Must be greater than 0."),
])
def test_bad_values_name_key_value_and_rule(env: dict[str, str], message: str):
    with pytest.raises(ConfigError) as info:
        load(**env)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("network, rule", [
    ("0.0.0.0/0", "open relay"),
    ("::/0", "open relay"),
    ("10.0.0.0/16", "Wider than /24"),
    ("2001:db8::/48", "Wider than /64"),
    ("192.0.2.0/24", "Contains the load balancer"),
    ("not-a-net", "Not an IP network"),
])
def test_ip_credentials_that_would_open_the_relay_are_refused(tmp_path: Path, network: str,
                                                               rule: str):
    text = (f'[smtp]\nload_balancers = ["192.0.2.10"]\n[[smtp.ip_credentials]]\n'
            f'login = "tool"\nnetworks = ["{network}"]\n')
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path)
    assert "smtp.ip_credentials[0].networks[0]" in str(info.value)
    assert rule in str(info.value)


def test_wide_ip_credential_allowed_only_with_force(tmp_path: Path):
    text = '[[smtp.ip_credentials]]\nlogin = "t"\nnetworks = ["10.0.0.0/16"]\nforce = true\n'
    assert load(text, tmp_path).smtp.ip_credentials[0].force


def test_invalid_toml_and_missing_file_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load("[smtp\n", tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        config_module.load(tmp_path / "nope.toml", BASE)


def test_development_file_shipped_with_make_run_is_valid():
    config = config_module.load(Path(__file__).parents[2] / "deploy/development.toml", {})
    assert config.is_development and config.vault.dev_generate


def test_production_example_is_valid():
    config = config_module.load(Path(__file__).parents[2] / "deploy/production.example.toml", {})
    assert config.environment == "production"
    assert config.upstreams["relay"].username and not config.upstreams["relay"].password


def test_upstream_password_never_appears_in_a_repr():
    config = load(GATEWAY__UPSTREAMS__OUT__KIND="smtp", GATEWAY__UPSTREAMS__OUT__HOST="127.0.0.1",
                  GATEWAY__UPSTREAMS__OUT__USERNAME="u",
                  GATEWAY__UPSTREAMS__OUT__PASSWORD="hunter2-very-secret")
    assert "hunter2-very-secret" not in repr(config)


def test_a_badly_typed_secret_is_not_echoed_in_the_error():
    with pytest.raises(ConfigError) as info:
        load(GATEWAY__UPSTREAMS__OUT__KIND="smtp", GATEWAY__UPSTREAMS__OUT__HOST="127.0.0.1",
             GATEWAY__UPSTREAMS__OUT__USERNAME="u", GATEWAY__UPSTREAMS__OUT__PASSWORD="918273645")
    assert str(info.value) == ("Config 'upstreams.out.password' has value '***'. "
                               "Not a valid string.")


def test_every_broken_rule_is_reported_at_once(tmp_path: Path):
    text = "[smtp]\nsubmission_port = 99999\nmax_recipients = 5\n[queue]\nretry_factor = 0.5\n"
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path)
    lines = str(info.value).splitlines()
    assert lines == [
        "Config 'smtp.submission_port' has value 99999. Must be a port between 0 and 65535.",
        "Config 'tenants.max_recipients' has value 50. Must be between 1 and "
        "smtp.max_recipients (5).",
        "Config 'queue.retry_factor' has value 0.5. Must be at least 1.",
    ]
