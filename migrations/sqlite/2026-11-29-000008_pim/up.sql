-- Privileged Identity Management: policies of privileged roles, who is
-- eligible, activation requests with their decisions, what was issued under
-- each window, and webhook deliveries.

-- An application may require an active elevation of a role.
ALTER TABLE clients ADD COLUMN required_role TEXT;
ALTER TABLE service_providers ADD COLUMN required_role TEXT;
-- Where an SP takes SOAP (back-channel) LogoutRequests.
ALTER TABLE service_providers ADD COLUMN soap_slo_url TEXT;
-- The browser's address when the grant was made: the network condition of
-- an elevation is checked against it on every issuance from the grant.
ALTER TABLE grants ADD COLUMN client_ip TEXT;

-- A role with a policy is privileged: it is only ever held for a window.
CREATE TABLE pim_policies (
    role_id TEXT PRIMARY KEY NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    max_duration BIGINT NOT NULL,
    require_justification BOOLEAN NOT NULL,
    justification_min_len BIGINT NOT NULL,
    ticket_required BOOLEAN NOT NULL,
    ticket_pattern TEXT,
    approval TEXT NOT NULL,
    require_mfa BOOLEAN NOT NULL,
    mfa_within BIGINT NOT NULL,
    -- JSON lists of window specs and CIDR networks.
    windows TEXT NOT NULL,
    networks TEXT NOT NULL,
    max_concurrent BIGINT,
    allow_scheduled BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Exactly one of user_id / group_id is set.
CREATE TABLE pim_eligibilities (
    id TEXT PRIMARY KEY NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    group_id TEXT REFERENCES user_groups(id) ON DELETE CASCADE,
    starts_at BIGINT,
    ends_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX pim_eligibilities_role ON pim_eligibilities(role_id);

CREATE TABLE pim_requests (
    id TEXT PRIMARY KEY NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    ticket TEXT,
    duration BIGINT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    pending_until BIGINT NOT NULL,
    -- What this request needs: none, manager or group:<name>:<count>.
    approval TEXT NOT NULL,
    risk_score BIGINT NOT NULL,
    risk_factors TEXT NOT NULL,
    ip TEXT,
    closed_at BIGINT,
    closed_by TEXT,
    close_reason TEXT
);
CREATE INDEX pim_requests_user ON pim_requests(user_id);
CREATE INDEX pim_requests_state ON pim_requests(state);

CREATE TABLE pim_decisions (
    request_id TEXT NOT NULL REFERENCES pim_requests(id) ON DELETE CASCADE,
    approver_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);

-- Every token or assertion that carried an elevation: who received it.
CREATE TABLE pim_issuances (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES pim_requests(id) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    recipient TEXT NOT NULL,
    session_digest TEXT,
    grant_id TEXT,
    name_id TEXT,
    session_index TEXT,
    at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pim_issuances_request ON pim_issuances(request_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
