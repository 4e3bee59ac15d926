// One schema for both backends: only TEXT, BIGINT and BOOLEAN columns, times
// as Unix seconds, so SQLite and PostgreSQL read and write identically.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        manager_id -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    user_groups (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
        required_acr -> Nullable<Text>,
    }
}

diesel::table! {
    memberships (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    role_assignments (role_id, user_id) {
        role_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    password_credentials (user_id) {
        user_id -> Text,
        hash -> Text,
        must_change -> Bool,
        updated_at -> BigInt,
    }
}

diesel::table! {
    browser_sessions (id_digest) {
        id_digest -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        auth_time -> BigInt,
        amr -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        factors -> Text,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        subject -> Text,
        ip -> Nullable<Text>,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> user_groups (group_id));
diesel::joinable!(role_assignments -> users (user_id));
diesel::joinable!(role_assignments -> roles (role_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_groups,
    memberships,
    roles,
    role_assignments,
    password_credentials,
    browser_sessions,
    audit_log,
    meta,
);

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key -> Text,
        public_jwk -> Text,
        created_at -> BigInt,
        activates_at -> BigInt,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        auth_method -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        require_pkce -> Bool,
        id_token_alg -> Text,
        access_token_ttl -> BigInt,
        id_token_ttl -> BigInt,
        refresh_token_ttl -> BigInt,
        consent_required -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        jwks -> Nullable<Text>,
        registration_token_hash -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        required_acr -> Nullable<Text>,
        required_role -> Nullable<Text>,
        registered_dynamically -> Bool,
        access_token_alg -> Text,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        session_digest -> Nullable<Text>,
        scope -> Text,
        auth_time -> Nullable<BigInt>,
        acr -> Nullable<Text>,
        amr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        client_ip -> Nullable<Text>,
        activation_id -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    registration_tokens (token_hash) {
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        uses_left -> BigInt,
    }
}

diesel::table! {
    service_providers (entity_id) {
        entity_id -> Text,
        name -> Text,
        acs -> Text,
        slo_url -> Nullable<Text>,
        slo_binding -> Nullable<Text>,
        signing_certs -> Text,
        encryption_cert -> Nullable<Text>,
        want_authn_requests_signed -> Bool,
        nameid_format -> Text,
        attributes -> Text,
        sign_response -> Bool,
        sign_assertion -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        required_acr -> Nullable<Text>,
        required_role -> Nullable<Text>,
        soap_slo_url -> Nullable<Text>,
        allow_unsigned_logout -> Bool,
    }
}

diesel::table! {
    saml_certs (id) {
        id -> Text,
        private_key -> Text,
        certificate -> Text,
        created_at -> BigInt,
        activates_at -> BigInt,
    }
}

diesel::table! {
    saml_participants (session_digest, entity_id) {
        session_digest -> Text,
        entity_id -> Text,
        name_id -> Text,
        session_index -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        secret -> Text,
        created_at -> BigInt,
        last_step -> BigInt,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_credentials (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Text,
        name -> Text,
        discoverable -> Bool,
        credential -> Text,
        aaguid -> Nullable<Text>,
        sign_count -> BigInt,
        backup_eligible -> Bool,
        backup_state -> Bool,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    invites (digest) {
        digest -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    pim_policies (role_id) {
        role_id -> Text,
        max_duration -> BigInt,
        require_justification -> Bool,
        justification_min_len -> BigInt,
        ticket_required -> Bool,
        ticket_pattern -> Nullable<Text>,
        approval -> Text,
        require_mfa -> Bool,
        mfa_within -> BigInt,
        windows -> Text,
        networks -> Text,
        max_concurrent -> Nullable<BigInt>,
        allow_scheduled -> Bool,
        updated_at -> BigInt,
    }
}

diesel::table! {
    pim_eligibilities (id) {
        id -> Text,
        role_id -> Text,
        user_id -> Nullable<Text>,
        group_id -> Nullable<Text>,
        starts_at -> Nullable<BigInt>,
        ends_at -> Nullable<BigInt>,
        created_at -> BigInt,
        created_by -> Text,
    }
}

diesel::table! {
    pim_requests (id) {
        id -> Text,
        role_id -> Text,
        user_id -> Text,
        state -> Text,
        reason -> Text,
        ticket -> Nullable<Text>,
        duration -> BigInt,
        starts_at -> BigInt,
        ends_at -> BigInt,
        created_at -> BigInt,
        pending_until -> BigInt,
        approval -> Text,
        risk_score -> BigInt,
        risk_factors -> Text,
        ip -> Nullable<Text>,
        closed_at -> Nullable<BigInt>,
        closed_by -> Nullable<Text>,
        close_reason -> Nullable<Text>,
    }
}

diesel::table! {
    pim_decisions (request_id, approver_id) {
        request_id -> Text,
        approver_id -> Text,
        decision -> Text,
        comment -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    pim_issuances (id) {
        id -> Text,
        request_id -> Text,
        protocol -> Text,
        recipient -> Text,
        session_digest -> Nullable<Text>,
        grant_id -> Nullable<Text>,
        name_id -> Nullable<Text>,
        session_index -> Nullable<Text>,
        at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        url -> Text,
        event -> Text,
        body -> Text,
        state -> Text,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        last_status -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
    }
}
