"""Outbound HTTP to addresses a tenant chose."""
