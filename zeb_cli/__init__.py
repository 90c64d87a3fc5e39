"""The `zeb` command line (typer + rich). Imports Prefect flows lazily, only in the commands that run them."""
