"""Self-play: the teachers that turn games into training examples, and the worker that runs them.

- games: searched self-play (MCTS), and the dispatch to the teacher a search config names
- batch: `SelfPlayBatch`, the examples every teacher returns
- solver_teacher: solver-taught self-play, the default teacher
- rollout_teacher: rollout-taught self-play (expert iteration) and the posterior teacher
- worker: the self-play worker's steps (pull weights, generate, upload) and its settings
- outbox: the worker's local outbox and its commit pacing
"""
