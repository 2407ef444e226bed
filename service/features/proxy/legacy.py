"""Moving relatives' verification sessions off `beneficiaries` rows (issue 20): shared by migration 0009 and the
embedded database's create_all (service/features/proxy/models.py), in plain SQL on a Connection (no models, no
key: the encrypted ID number moves as it is).

Before, a relative who is not a pensioner was stored as a `beneficiaries` row with status `proxy_operator`
(external id `OPERATOR-…`) so that their verification session had a beneficiary. Now the session has none
(`cert_sessions.beneficiary_id` NULL) and its claim sits in `proxy_claims`.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

OPERATOR_STATUS = "proxy_operator"  # the old BeneficiaryStatus.PROXY_OPERATOR, kept only for this carry-over
# Columns that referred to the relative's row and now hold NULL for a verification session.
BENEFICIARY_COLUMNS = (("cert_sessions", "beneficiary_id"), ("video_fingerprints", "beneficiary_id"))


def relax_beneficiary_columns(conn: Connection) -> None:
    """Make BENEFICIARY_COLUMNS nullable in a database create_all made before 0009. SQLite cannot alter a column:
    its documented procedure for dropping a NOT NULL constraint (no change to the stored rows) rewrites the
    table's schema text (https://sqlite.org/lang_altertable.html, "otheralter")."""
    insp = inspect(conn)
    required = [
        (table, col["name"])
        for table, column in BENEFICIARY_COLUMNS
        for col in insp.get_columns(table)
        if col["name"] == column and not col["nullable"]
    ]
    if not required:
        return
    if conn.dialect.name != "sqlite":
        for table, column in required:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
        return
    version = int(conn.exec_driver_sql("PRAGMA schema_version").scalar_one())
    conn.exec_driver_sql("PRAGMA writable_schema=ON")
    for table, column in required:
        conn.exec_driver_sql(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
            (f"{column} INTEGER NOT NULL", f"{column} INTEGER", table),
        )
    conn.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema=OFF")
    still = [f"{t}.{c}" for t, c in required if not _nullable(conn, t, c)]
    if still:  # a schema text this rewrite does not know: refuse rather than run with the old constraint
        raise RuntimeError(f"cannot relax NOT NULL on {', '.join(still)}: migrate this database with Alembic")


def _nullable(conn: Connection, table: str, column: str) -> bool:
    return any(c["name"] == column and c["nullable"] for c in inspect(conn).get_columns(table))


def claims_from_operator_rows(conn: Connection) -> int:
    """Every verification session's claim from the beneficiary row it points at; the sessions (and their video
    fingerprints) then point at nobody, and the `proxy_operator` rows nothing refers to any more are deleted.
    A relative who is also on the roster keeps their beneficiary row; only their verification leaves it.
    Idempotent. Returns the number of sessions moved."""
    moved = conn.exec_driver_sql(
        "INSERT INTO proxy_claims (session_id, operator_id, id_hash, id_enc, id_masked, name, created_at) "
        "SELECT ps.session_id, ps.operator_id, b.id_hash, b.id_enc, b.id_masked, b.name, ps.created_at "
        "FROM proxy_sessions ps JOIN cert_sessions s ON s.id = ps.session_id "
        "JOIN beneficiaries b ON b.id = s.beneficiary_id "
        "WHERE ps.kind = 'verification' AND ps.session_id NOT IN (SELECT session_id FROM proxy_claims)"
    ).rowcount
    for table, column in BENEFICIARY_COLUMNS:
        conn.exec_driver_sql(
            f"UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL AND "
            f"{'id' if table == 'cert_sessions' else 'session_id'} IN (SELECT session_id FROM proxy_claims)"
        )
    unreferenced = " AND ".join(
        f"id NOT IN (SELECT {col} FROM {table} WHERE {col} IS NOT NULL)" for table, col in _references(conn)
    )
    where = f"status = '{OPERATOR_STATUS}'" + (f" AND {unreferenced}" if unreferenced else "")
    conn.exec_driver_sql(f"DELETE FROM beneficiaries WHERE {where}")
    return int(moved or 0)


def operator_rows_from_claims(conn: Connection) -> None:
    """The way back (0009's downgrade): a `proxy_operator` row for each claimed ID number no beneficiary holds
    (external id `OPERATOR-` + the first session's id; region unknown: the clear number is not at hand), and
    every verification session and its fingerprints pointed at the row of its claimed number."""
    conn.exec_driver_sql(
        "INSERT INTO beneficiaries (external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status, "
        "template_consent, roster_digest, created_at, updated_at) "
        "SELECT 'OPERATOR-' || substr(c.session_id, 1, 12), c.id_hash, c.id_enc, c.id_masked, c.name, '', '[]', "
        f"'{OPERATOR_STATUS}', false, '', c.created_at, c.created_at FROM proxy_claims c "
        "WHERE c.session_id = (SELECT min(c2.session_id) FROM proxy_claims c2 WHERE c2.id_hash = c.id_hash) "
        "AND c.id_hash NOT IN (SELECT id_hash FROM beneficiaries)"
    )
    holder = "(SELECT b.id FROM beneficiaries b JOIN proxy_claims c ON c.id_hash = b.id_hash WHERE c.session_id = {})"
    conn.exec_driver_sql(
        f"UPDATE cert_sessions SET beneficiary_id = {holder.format('cert_sessions.id')} "
        "WHERE id IN (SELECT session_id FROM proxy_claims)"
    )
    conn.exec_driver_sql(
        f"UPDATE video_fingerprints SET beneficiary_id = {holder.format('video_fingerprints.session_id')} "
        "WHERE session_id IN (SELECT session_id FROM proxy_claims)"
    )


def _references(conn: Connection) -> list[tuple[str, str]]:
    """(table, column) of every foreign key to `beneficiaries` (a row still referred to is never deleted)."""
    insp = inspect(conn)
    return [
        (table, fk["constrained_columns"][0])
        for table in insp.get_table_names()
        for fk in insp.get_foreign_keys(table)
        if fk["referred_table"] == "beneficiaries" and len(fk["constrained_columns"]) == 1
    ]
