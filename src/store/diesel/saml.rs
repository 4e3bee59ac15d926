//! Service providers and SAML signing certificates.

use super::clients::{from_json, to_json};
use super::schema::{saml_certs as sc, saml_participants as pt, service_providers as sp};
use super::{DbConn, conflict_as, from_ts, to_ts};
use crate::domain::{Binding, NameIdFormat, SamlCert, SamlParticipant, ServiceProvider};
use crate::error::{Error, Result};
use crate::store::SpRepo;
use diesel::prelude::*;

#[derive(Queryable, Insertable)]
#[diesel(table_name = sp)]
struct SpRow {
    entity_id: String,
    name: String,
    acs: String,
    slo_url: Option<String>,
    slo_binding: Option<String>,
    signing_certs: String,
    encryption_cert: Option<String>,
    want_authn_requests_signed: bool,
    nameid_format: String,
    attributes: String,
    sign_response: bool,
    sign_assertion: bool,
    created_at: i64,
    updated_at: i64,
    required_acr: Option<String>,
    required_role: Option<String>,
    soap_slo_url: Option<String>,
    allow_unsigned_logout: bool,
}

fn binding_name(b: Binding) -> String {
    match b {
        Binding::Post => "post".into(),
        Binding::Redirect => "redirect".into(),
    }
}

fn binding_from(s: &str) -> Option<Binding> {
    match s {
        "post" => Some(Binding::Post),
        "redirect" => Some(Binding::Redirect),
        _ => None,
    }
}

impl SpRow {
    fn from_domain(x: &ServiceProvider) -> Self {
        Self {
            entity_id: x.entity_id.clone(),
            name: x.name.clone(),
            acs: to_json(&x.acs),
            slo_url: x.slo_url.clone(),
            slo_binding: x.slo_binding.map(binding_name),
            signing_certs: to_json(&x.signing_certs),
            encryption_cert: x.encryption_cert.clone(),
            want_authn_requests_signed: x.want_authn_requests_signed,
            nameid_format: to_json(&x.nameid_format).trim_matches('"').to_string(),
            attributes: to_json(&x.attributes),
            sign_response: x.sign_response,
            sign_assertion: x.sign_assertion,
            created_at: to_ts(x.created_at),
            updated_at: to_ts(x.updated_at),
            required_acr: x.required_acr.clone(),
            required_role: x.required_role.clone(),
            soap_slo_url: x.soap_slo_url.clone(),
            allow_unsigned_logout: x.allow_unsigned_logout,
        }
    }

    fn into_domain(self) -> Result<ServiceProvider> {
        Ok(ServiceProvider {
            acs: from_json("ACS endpoints", &self.acs)?,
            slo_binding: self.slo_binding.as_deref().and_then(binding_from),
            signing_certs: from_json("signing certificates", &self.signing_certs)?,
            nameid_format: NameIdFormat::parse(&self.nameid_format).ok_or_else(|| {
                Error::internal(format!("stored NameID format {}", self.nameid_format))
            })?,
            attributes: from_json("attribute mappings", &self.attributes)?,
            entity_id: self.entity_id,
            name: self.name,
            slo_url: self.slo_url,
            encryption_cert: self.encryption_cert,
            want_authn_requests_signed: self.want_authn_requests_signed,
            allow_unsigned_logout: self.allow_unsigned_logout,
            sign_response: self.sign_response,
            sign_assertion: self.sign_assertion,
            required_acr: self.required_acr,
            required_role: self.required_role,
            soap_slo_url: self.soap_slo_url,
            created_at: from_ts(self.created_at),
            updated_at: from_ts(self.updated_at),
        })
    }
}

type CertRow = (String, String, String, i64, i64);

impl SpRepo for DbConn {
    fn insert_sp(&mut self, x: &ServiceProvider) -> Result<()> {
        diesel::insert_into(sp::table)
            .values(SpRow::from_domain(x))
            .execute(self)
            .map_err(conflict_as(&format!("service provider {}", x.entity_id)))?;
        Ok(())
    }

    fn sp(&mut self, entity_id: &str) -> Result<Option<ServiceProvider>> {
        sp::table
            .find(entity_id)
            .first::<SpRow>(self)
            .optional()?
            .map(SpRow::into_domain)
            .transpose()
    }

    fn list_sps(&mut self) -> Result<Vec<ServiceProvider>> {
        sp::table
            .order(sp::name.asc())
            .load::<SpRow>(self)?
            .into_iter()
            .map(SpRow::into_domain)
            .collect()
    }

    fn delete_sp(&mut self, entity_id: &str) -> Result<()> {
        if diesel::delete(sp::table.find(entity_id)).execute(self)? == 0 {
            return Err(Error::not_found(format!("no service provider {entity_id}")));
        }
        Ok(())
    }

    fn insert_saml_cert(&mut self, c: &SamlCert) -> Result<()> {
        diesel::insert_into(sc::table)
            .values((
                sc::id.eq(&c.id),
                sc::private_key.eq(&c.sealed_private_key),
                sc::certificate.eq(&c.certificate),
                sc::created_at.eq(to_ts(c.created_at)),
                sc::activates_at.eq(to_ts(c.activates_at)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn saml_certs(&mut self) -> Result<Vec<SamlCert>> {
        Ok(sc::table
            .order(sc::activates_at.asc())
            .load::<CertRow>(self)?
            .into_iter()
            .map(|r| SamlCert {
                id: r.0,
                sealed_private_key: r.1,
                certificate: r.2,
                created_at: from_ts(r.3),
                activates_at: from_ts(r.4),
            })
            .collect())
    }

    fn delete_saml_cert(&mut self, id: &str) -> Result<()> {
        diesel::delete(sc::table.find(id)).execute(self)?;
        Ok(())
    }

    fn record_participant(&mut self, p: &SamlParticipant) -> Result<()> {
        diesel::delete(pt::table.find((&p.session_digest, &p.entity_id))).execute(self)?;
        diesel::insert_into(pt::table)
            .values((
                pt::session_digest.eq(&p.session_digest),
                pt::entity_id.eq(&p.entity_id),
                pt::name_id.eq(&p.name_id),
                pt::session_index.eq(&p.session_index),
                pt::created_at.eq(to_ts(p.created_at)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn participants(&mut self, session_digest: &str) -> Result<Vec<SamlParticipant>> {
        Ok(pt::table
            .filter(pt::session_digest.eq(session_digest))
            .order(pt::created_at.asc())
            .load::<ParticipantRow>(self)?
            .into_iter()
            .map(participant)
            .collect())
    }

    fn participant_by_index(
        &mut self,
        entity_id: &str,
        session_index: &str,
    ) -> Result<Option<SamlParticipant>> {
        Ok(pt::table
            .filter(pt::entity_id.eq(entity_id))
            .filter(pt::session_index.eq(session_index))
            .first::<ParticipantRow>(self)
            .optional()?
            .map(participant))
    }
}

type ParticipantRow = (String, String, String, String, i64);

fn participant(r: ParticipantRow) -> SamlParticipant {
    SamlParticipant {
        session_digest: r.0,
        entity_id: r.1,
        name_id: r.2,
        session_index: r.3,
        created_at: from_ts(r.4),
    }
}
