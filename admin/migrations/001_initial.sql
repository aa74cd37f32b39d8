-- Tollgate admin schema.  A global sequence versions every configuration
-- row, so a version never goes back, even across delete and re-create:
-- Redis writers compare versions to drop stale writes.

CREATE SEQUENCE config_version_seq;

CREATE TABLE clusters (
    cluster_id      text PRIMARY KEY
                    CHECK (cluster_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    capacity        bigint NOT NULL CHECK (capacity > 0),
    reserved_ratio  numeric(5, 4) NOT NULL DEFAULT 0.1
                    CHECK (reserved_ratio >= 0 AND reserved_ratio < 1),
    version         bigint NOT NULL DEFAULT nextval('config_version_seq'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cost_profiles (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    base            bigint NOT NULL CHECK (base >= 0),
    bandwidth       bigint NOT NULL CHECK (bandwidth >= 0),
    quantum         bigint NOT NULL CHECK (quantum > 0),
    version         bigint NOT NULL DEFAULT nextval('config_version_seq')
);

INSERT INTO cost_profiles (name, base, bandwidth, quantum)
    VALUES ('standard', 2, 1, 65536);

CREATE TABLE applications (
    app_id            text PRIMARY KEY
                      CHECK (app_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    cluster_id        text NOT NULL REFERENCES clusters (cluster_id),
    guaranteed_quota  bigint NOT NULL CHECK (guaranteed_quota >= 0),
    burst_quota       bigint NOT NULL,
    priority          smallint NOT NULL DEFAULT 2
                      CHECK (priority BETWEEN 0 AND 2),
    max_borrow        bigint NOT NULL DEFAULT 0 CHECK (max_borrow >= 0),
    cost_profile      text NOT NULL DEFAULT 'standard'
                      REFERENCES cost_profiles (name),
    version           bigint NOT NULL
                      DEFAULT nextval('config_version_seq'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (burst_quota >= guaranteed_quota)
);

CREATE INDEX applications_cluster ON applications (cluster_id);

CREATE TABLE users (
    username        text PRIMARY KEY
                    CHECK (username ~ '^[A-Za-z0-9._-]{1,64}$'),
    password_hash   text NOT NULL,
    role            text NOT NULL
                    CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    type            text NOT NULL,
    app_id          text,
    cluster_id      text,
    details         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_app ON events (app_id, id);
CREATE INDEX events_cluster ON events (cluster_id, id);
