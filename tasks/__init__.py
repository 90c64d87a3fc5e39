"""Thin Prefect tasks over zeb_core, one module per job; the rules they follow are zeb_core's.

Tasks that do store I/O on plain values (a store URL, a namespace: monitor, prune, revert, the ladder's players)
open the store themselves and declare Prefect retries for an outage that outlasts the store's own backoff, never
for a refusal. Tasks over live objects (a Learner, a SelfPlayWorker, players in memory) are spans in the UI: a
retry would repeat a step on state that has moved on, so they do not retry. Every task that reads or changes a
store, and every task over a live object, disables caching (NO_CACHE): what it reads moves under it.
"""
