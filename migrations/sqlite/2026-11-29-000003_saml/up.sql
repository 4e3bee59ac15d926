CREATE TABLE service_providers (
    entity_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    acs TEXT NOT NULL,
    slo_url TEXT,
    slo_binding TEXT,
    signing_certs TEXT NOT NULL,
    encryption_cert TEXT,
    want_authn_requests_signed BOOLEAN NOT NULL,
    nameid_format TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sign_response BOOLEAN NOT NULL,
    sign_assertion BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE saml_certs (
    id TEXT PRIMARY KEY NOT NULL,
    private_key TEXT NOT NULL,
    certificate TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

CREATE TABLE saml_participants (
    session_digest TEXT NOT NULL REFERENCES browser_sessions(id_digest) ON DELETE CASCADE,
    entity_id TEXT NOT NULL REFERENCES service_providers(entity_id) ON DELETE CASCADE,
    name_id TEXT NOT NULL,
    session_index TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_digest, entity_id)
);
CREATE INDEX saml_participants_index ON saml_participants(entity_id, session_index);
