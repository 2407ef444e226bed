-- docker-compose.yml's `db-grants` one-shot, as pension_owner after each `alembic upgrade head` (idempotent):
-- the two audit trails are append-only for the service's role, which only ever inserts and reads them
-- (service/certification/audit.py, service/certification/staff_audit.py). docs/operations.md, "Database roles".
\set ON_ERROR_STOP on
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries, console_audit FROM pension_app;
