"""What the gateway adds to each outgoing copy: unsubscribe headers, footer, DKIM signature."""
