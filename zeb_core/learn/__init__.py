"""The learner: examples in, better weights out.

- learner: the learner's cycle (ingest, train, evaluate, push, prune) and its settings
- state: the learner's state file, written beside the weights and read back on resume
- promotion: the SPRT that decides whether a candidate beats the best
- buffer: the device-resident replay buffer
- schedule: the learning rate as a function of the step
- step: one training step (`Trainer`, `TrainConfig`) and its metrics
"""
