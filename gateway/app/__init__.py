"""The application: its parts wired once from the configuration (`parts.py`), a running
gateway that starts and stops them (`service.py`), and its worker processes (`workers.py`)."""
