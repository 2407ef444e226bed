"""HTTP API (FastAPI): the app in app.py (``create_app``), routers per domain, dependencies in deps.py, error
mapping in errors.py.

This ``__init__`` imports nothing: the features import this package's HTTP kit (deps, errors, schemas, upload), and
every such import runs this file first. It once imported the app (then looked it up lazily), which ran every
feature's routes from inside the first of them, half-initialised ("partially initialized module ... has no
attribute 'router'"); tests/service/test_architecture.py now follows the ``__init__`` an import runs. Import the
app from its module: ``from service.adapters.http.app import create_app``."""
