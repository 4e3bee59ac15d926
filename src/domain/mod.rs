//! Plain data and validated names. No I/O, no framework types.

mod names;
mod oidc;
mod records;
mod saml;

pub use names::{GroupName, NameError, RoleName, Username, validate_email};
pub use oidc::{
    AuthMethod, Client, Grant, GrantType, RefreshToken, RegistrationToken, SigningAlg, StoredKey,
};
pub use records::{
    AuditEntry, Group, NewAuditEntry, PasswordCredential, Role, Session, User, UserStatus,
};
pub use saml::{
    ATTRIBUTE_SOURCES, AcsEndpoint, AttributeMapping, Binding, NameIdFormat, SamlCert,
    SamlParticipant, ServiceProvider,
};

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random identifier.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// Wraps an identifier read back from storage.
            pub fn from_stored(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Stable, opaque identifier of a user; never the username.
    UserId
);
id_type!(GroupId);
id_type!(RoleId);
