"""Deliver: one upstream transaction per copy (`relay.py`, `upstream/`), the durable queue of
what is deferred or refused (`queue.py`), its retries (`retries.py`), delivery reports
(`dsn.py`) and `gateway trace` (`trace.py`)."""
