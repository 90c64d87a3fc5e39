"""Operations: the run's health, logs, figures and resources.

- monitor: the run monitor's checks
- wandb_log: W&B logging that never stops training
- curves: the training curve PNG
- memory: freed heap pages given back between batches
- device: one reading of a `--device` flag
"""
