"""The scheduler: QtCore workers, retries and the single database writer."""
