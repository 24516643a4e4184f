"""The cluster: the same per-image work on Dramatiq workers, state in a shared database.

Qt-free: these modules run in worker processes. Importing them needs the ``cluster`` extra
(dramatiq, redis); nothing else in imgdesk imports them unless ``--broker`` is given.
"""
