"""Plain-Python core of imgdesk: no Qt here (a test and ruff's TID251 enforce it)."""
