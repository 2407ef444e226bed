"""What the pictures mean: pure functions of media + configuration, returning typed results.

`pipelines` imports `models` only; it never imports `service` or `proxy_auth`.
"""
