"""Thin Prefect tasks over zeb_core. Each one does one step and can be retried or cached on its own."""
