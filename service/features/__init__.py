"""Features around the core (proxy certification, staff console, WeChat channel with its H5 pages)."""
