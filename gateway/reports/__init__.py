"""Reports computed from the audit trail alone (the opt-out report; the evidence pack)."""
