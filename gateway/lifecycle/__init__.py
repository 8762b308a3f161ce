"""The data lifecycle: retention and its purge rounds, a data subject's export and erasure,
a tenant's deletion."""
