"""The database role the service runs as: never a PostgreSQL superuser.

A superuser (the official image's POSTGRES_USER is the cluster's bootstrap superuser) can run programs on the
database host (`COPY … TO PROGRAM`), read its files, change roles and rewrite or drop the audit trails wholesale:
one SQL injection or one leaked PENSION_CERT_DATABASE_URL would be all of that. The migrations run as the schema's
owner, the API and the workers as a role with data rights only (docker-compose.yml, deploy/postgres/; docs/
operations.md, "Database roles"). A production start on a superuser is refused (service/adapters/cli/serve_cmd.py),
development and the tests (their server's superuser) are let be.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

VARIABLE = "PENSION_CERT_DATABASE_URL"


def superuser_problem(role: str, is_superuser: bool) -> str:
    """Why the service must not run as `role` ('' when it may): the decision on the server's answer."""
    if not is_superuser:
        return ""
    return (
        f"connects as the PostgreSQL superuser {role!r}: run the service as a role with data rights only "
        "and the migrations as the schema's owner (docs/operations.md, Database roles)"
    )


def runtime_role(bind: Engine | Connection) -> tuple[str, bool] | None:
    """(current_user, whether it is a superuser) on PostgreSQL; None on any other database."""
    if bind.dialect.name != "postgresql":
        return None
    query = text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    if isinstance(bind, Connection):
        row = bind.execute(query).one()
    else:
        with bind.connect() as conn:
            row = conn.execute(query).one()
    return str(row[0]), bool(row[1])


def role_problem(bind: Engine | Connection) -> str:
    """Why the service must not run with this connection's role ('' when it may, and on SQLite)."""
    found = runtime_role(bind)
    return "" if found is None else superuser_problem(*found)
