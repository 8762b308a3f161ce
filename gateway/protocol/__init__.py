"""What the gateway says on the wire: the SMTP reply catalogue (every code and its RFC 3463
enhanced status), used by every room that answers a client or records an answer."""
