//! Repository traits for the SAML side.

use crate::domain::{SamlCert, SamlParticipant, ServiceProvider};
use crate::error::Result;

pub trait SpRepo {
    /// Fails with `Conflict` when the entity ID is registered already.
    fn insert_sp(&mut self, sp: &ServiceProvider) -> Result<()>;
    fn sp(&mut self, entity_id: &str) -> Result<Option<ServiceProvider>>;
    fn list_sps(&mut self) -> Result<Vec<ServiceProvider>>;
    /// `NotFound` when absent.
    fn delete_sp(&mut self, entity_id: &str) -> Result<()>;
    fn insert_saml_cert(&mut self, cert: &SamlCert) -> Result<()>;
    fn saml_certs(&mut self) -> Result<Vec<SamlCert>>;
    fn delete_saml_cert(&mut self, id: &str) -> Result<()>;
    /// Records (or refreshes) that an SP received an assertion in a session.
    fn record_participant(&mut self, p: &SamlParticipant) -> Result<()>;
    fn participants(&mut self, session_digest: &str) -> Result<Vec<SamlParticipant>>;
    /// The participation an SP names by its SessionIndex.
    fn participant_by_index(
        &mut self,
        entity_id: &str,
        session_index: &str,
    ) -> Result<Option<SamlParticipant>>;
}
