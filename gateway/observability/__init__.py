"""What an operator watches: structured logs (and the ids each line carries), metrics, and
alerts."""
