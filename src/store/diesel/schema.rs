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
