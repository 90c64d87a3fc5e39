"""Credentials from Prefect Secret blocks, for hosts that do not carry them in the environment.

A flow calls `load_credentials()` before it opens a store: each Secret block below that exists is copied into the
environment variable the client library reads (huggingface_hub, boto3, wandb). Values already in the environment
win; nothing is ever logged but the names of the blocks used.
"""

from __future__ import annotations

import logging
import os

SECRET_BLOCKS = {
    "zeb-hf-token": "HF_TOKEN",
    "zeb-aws-access-key-id": "AWS_ACCESS_KEY_ID",
    "zeb-aws-secret-access-key": "AWS_SECRET_ACCESS_KEY",
    "zeb-wandb-api-key": "WANDB_API_KEY",
}
log = logging.getLogger("zeb.credentials")


def load_credentials() -> list[str]:
    """Copy existing Secret blocks into the environment; returns the block names used."""
    from prefect.blocks.system import Secret

    used = []
    for block, env in SECRET_BLOCKS.items():
        if os.environ.get(env):
            continue
        try:
            value = Secret.load(block).get()
        except Exception:  # noqa: BLE001 - a missing block (or no API) simply means "not configured"
            continue
        if value:
            os.environ[env] = str(value)
            used.append(block)
    if used:
        log.info("credentials from Prefect Secret blocks: %s", ", ".join(used))
    return used
