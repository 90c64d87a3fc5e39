"""Prefect flows composed from tasks: learner, self-play worker, evaluation, ladder, monitor, prune, revert, stop."""
