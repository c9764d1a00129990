-- sixboot inventory, schema 1: hosts (definitions), host_states (install flag, token,
-- last stage), boot_events, api_tokens, applied_ops (replayed outbox entries), and the
-- change feed (a revision per row write, tombstones for deletes, one NOTIFY per
-- statement on channel sixboot_inventory).

CREATE SEQUENCE sixboot_revision;

CREATE TABLE hosts (
    mac text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    address text UNIQUE,
    spec jsonb NOT NULL,
    version bigint NOT NULL,
    revision bigint NOT NULL DEFAULT 0
);

CREATE TABLE host_states (
    mac text PRIMARY KEY,
    install boolean NOT NULL,
    token text,
    version bigint NOT NULL,
    stage text NOT NULL,
    stage_at bigint NOT NULL,
    detail text,
    boot bigint NOT NULL,
    revision bigint NOT NULL DEFAULT 0,
    CHECK ((install AND token IS NOT NULL) OR NOT install OR token IS NULL)
);

CREATE TABLE deleted_rows (
    kind text NOT NULL,
    mac text NOT NULL,
    revision bigint NOT NULL DEFAULT nextval('sixboot_revision')
);
CREATE INDEX deleted_rows_revision ON deleted_rows (revision);
CREATE INDEX hosts_revision ON hosts (revision);
CREATE INDEX host_states_revision ON host_states (revision);

CREATE TABLE boot_events (
    id text PRIMARY KEY,
    seq bigserial NOT NULL,
    mac text NOT NULL,
    boot bigint NOT NULL,
    stage text NOT NULL,
    at bigint NOT NULL,
    server text NOT NULL,
    peer text,
    detail text
);
CREATE INDEX boot_events_mac_boot ON boot_events (mac, boot);

CREATE TABLE api_tokens (
    id text PRIMARY KEY,
    name text NOT NULL,
    hash text NOT NULL,
    created_at bigint NOT NULL,
    revoked_at bigint
);

CREATE TABLE applied_ops (
    id text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION sixboot_set_revision() RETURNS trigger AS $$
BEGIN
    NEW.revision := nextval('sixboot_revision');
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION sixboot_tombstone() RETURNS trigger AS $$
BEGIN
    INSERT INTO deleted_rows (kind, mac) VALUES (TG_TABLE_NAME, OLD.mac);
    RETURN OLD;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION sixboot_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('sixboot_inventory', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER hosts_revision BEFORE INSERT OR UPDATE ON hosts
    FOR EACH ROW EXECUTE FUNCTION sixboot_set_revision();
CREATE TRIGGER host_states_revision BEFORE INSERT OR UPDATE ON host_states
    FOR EACH ROW EXECUTE FUNCTION sixboot_set_revision();
CREATE TRIGGER hosts_tombstone AFTER DELETE ON hosts
    FOR EACH ROW EXECUTE FUNCTION sixboot_tombstone();
CREATE TRIGGER host_states_tombstone AFTER DELETE ON host_states
    FOR EACH ROW EXECUTE FUNCTION sixboot_tombstone();
CREATE TRIGGER hosts_notify AFTER INSERT OR UPDATE OR DELETE ON hosts
    FOR EACH STATEMENT EXECUTE FUNCTION sixboot_notify();
CREATE TRIGGER host_states_notify AFTER INSERT OR UPDATE OR DELETE ON host_states
    FOR EACH STATEMENT EXECUTE FUNCTION sixboot_notify();
