"""The window: a thin QtWidgets layer over the engine."""
