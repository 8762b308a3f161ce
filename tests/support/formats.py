"""Suppression list files as other tools export them."""

from __future__ import annotations

AWS_CLI_JSON = b"""{
    "SuppressedDestinationSummaries": [
        {
            "EmailAddress": "bounced@example.com",
            "Reason": "BOUNCE",
            "LastUpdateTime": "2024-03-01T10:00:00+00:00"
        },
        {
            "EmailAddress": "complained@example.com",
            "Reason": "COMPLAINT",
            "LastUpdateTime": 1709287200.577
        },
        {
            "EmailAddress": "not-an-address",
            "Reason": "BOUNCE",
            "LastUpdateTime": "2024-03-01T10:00:00+00:00"
        }
    ],
    "NextToken": "AQICAHj"
}
"""
