"""Prefect flows composed from tasks: evaluation now; learner, self-play worker, pruning and revert to come."""
