"""Proxy certification (代认证 / 亲情认证) in the service: relatives' accounts, bindings to elders, proxy
sessions, the policy applied after the normal decision, and the history of who certified whom.

The rules themselves live in `proxy_auth`; this package persists them and exposes them over HTTP.
"""
