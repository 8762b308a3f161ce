"""DKIM: keys per tenant domain (sealed at rest) and the signer."""
