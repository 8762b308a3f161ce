"""Tracking pixels: found and taken over in outgoing HTML, opens counted without full IPs."""
