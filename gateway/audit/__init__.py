"""Record: every decision an audit row on a hash chain, anchored and verifiable."""
