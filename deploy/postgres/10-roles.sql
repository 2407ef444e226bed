-- docker-compose.yml: the service's two database roles, made once, when the postgres volume is first created (the
-- official image runs /docker-entrypoint-initdb.d/ on an empty data folder only), by the bootstrap superuser
-- (POSTGRES_USER), which nothing of the service uses afterwards. docs/operations.md, "Database roles".
--   pension_owner: owns the database and its schema; only the one-shot `migrate` service (alembic) logs in as it.
--   pension_app:   the API, the workers and beat; reads and writes the service's rows, no DDL, not a superuser.
-- The passwords come from the container's environment (psql 15's \getenv), never from this file.
\set ON_ERROR_STOP on
\getenv owner_password PENSION_OWNER_DB_PASSWORD
\getenv app_password PENSION_APP_DB_PASSWORD

CREATE ROLE pension_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
CREATE ROLE pension_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';

-- The database's owner also owns its public schema (pg_database_owner, PostgreSQL 15): the migrations create there.
ALTER DATABASE :"DBNAME" OWNER TO pension_owner;
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO pension_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO pension_app;

-- Every table and sequence the migrations create: rows only (after-migrations.sql narrows the audit trails).
ALTER DEFAULT PRIVILEGES FOR ROLE pension_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pension_app;
ALTER DEFAULT PRIVILEGES FOR ROLE pension_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO pension_app;
