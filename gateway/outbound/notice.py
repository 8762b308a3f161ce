"""The notice `allow-with-notice` promises (GDPR Art. 14, in the first message from the
tenant, who is the controller, to the person): who the controller is, where the address came
from, the purpose and its legal basis, a link to the tenant's full notice — and, set apart
as Art. 21(4) asks, the right to object, whose link is the copy's own unsubscribe link.

It renders in the footer's sandbox and is spliced with the footer (outbound/footer.py), so
the message's other bytes stay as they were. The tenant says what only it knows (tenant
settings `notice_source`, `notice_purpose`, `notice_url`; `notice_controller` defaults to
its sender name) and may replace the wording (`notice_text`, `notice_html`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.directory.settings import NOTICE_VALUES
from gateway.outbound import footer

DEFAULT_TEXT = (
    "\n-- \nAbout this email (GDPR Art. 14): {{ controller }}, {{ postal_address }}, is the "
    "controller of the data we hold about you.\n"
    "Where your address came from: {{ data_source }}\n"
    "Purpose and legal basis: {{ purpose }}\nOur full privacy notice: {{ notice_url }}\n\n"
    "YOUR RIGHT TO OBJECT: you may object at any time, free of charge, to the use of your "
    "data for direct marketing, and we will stop: {{ unsubscribe_url }}\n")
DEFAULT_HTML = (
    '<div style="margin-top:24px;font-size:12px;color:#555">\n'
    "<p>About this email (GDPR Art. 14): {{ controller }}, {{ postal_address }}, is the "
    "controller of the data we hold about you.\n"
    "Where your address came from: {{ data_source }}.\n"
    "Purpose and legal basis: {{ purpose }}.\n"
    '<a href="{{ notice_url }}">Our full privacy notice</a>.</p>\n'
    '<p style="border:1px solid #999;padding:8px"><strong>Your right to object:</strong> you '
    "may object at any time, free of charge, to the use of your data for direct marketing, "
    'and we will stop:\n<a href="{{ unsubscribe_url }}">object</a>.</p></div>\n')


def _values(settings: Mapping[str, Any], tenant_name: str, url: str) -> dict[str, str]:
    s = settings
    values = {"controller": str(s.get("notice_controller") or s.get("sender_name")
                              or tenant_name),
            "postal_address": str(s.get("postal_address") or ""),
            "data_source": str(s.get("notice_source") or ""),
            "purpose": str(s.get("notice_purpose") or ""),
            "notice_url": str(s.get("notice_url") or ""),
            "unsubscribe_url": url}
    assert set(values) == set(NOTICE_VALUES)  # what a template is checked with when set
    return values


def render(settings: Mapping[str, Any], tenant_name: str) -> tuple[str, str]:
    """(plain text, HTML) of the tenant's notice, the unsubscribe link as the footer's slot."""
    values = _values(settings, tenant_name, footer.PLACEHOLDER)
    text = footer.render(str(settings.get("notice_text") or DEFAULT_TEXT), values, html=False)
    html = footer.render(str(settings.get("notice_html") or DEFAULT_HTML), values, html=True)
    return text, html
