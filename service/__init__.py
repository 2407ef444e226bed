"""The product around the pipelines: API, tasks, storage, annual cycle, console, WeChat channel, CLI."""
