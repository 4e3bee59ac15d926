//! Argon2id password hashing. These calls are CPU-heavy by design: run them on
//! a blocking thread, never on an async worker.

pub use super::working_memory::WorkingMemory;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

/// Argon2id's memory cost in KiB: OWASP's first recommendation (19 MiB,
/// 2 passes, 1 lane).
const MEMORY_KIB: u32 = 19 * 1024;

/// The memory one hashing or verification holds while it runs, in bytes.
/// Bounding how many run at once bounds the memory sign-ins can take.
pub const MEMORY_PER_HASHING: usize = MEMORY_KIB as usize * 1024;

fn params() -> Params {
    Params::new(MEMORY_KIB, 2, 1, None).expect("static Argon2 parameters are valid")
}

/// Hashes a password into a PHC string (`$argon2id$v=19$…`).
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_password_in(&mut WorkingMemory::default(), password)
}

/// [`hash_password`] in working memory kept from earlier hashings.
pub fn hash_password_in(memory: &mut WorkingMemory, password: &str) -> Result<String, String> {
    let fail = |e: &dyn std::fmt::Display| format!("password hashing failed: {e}");
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let params = params();
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(
        memory,
        &params,
        Version::V0x13,
        password,
        raw_salt,
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches `phc`, with the parameters `phc` names (an
/// older hash keeps working after the defaults change). A malformed stored
/// hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_in(&mut WorkingMemory::default(), password, phc)
}

/// [`verify_password`] in working memory kept from earlier hashings.
pub fn verify_password_in(memory: &mut WorkingMemory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if Algorithm::try_from(parsed.algorithm) != Ok(Algorithm::Argon2id) {
        return false;
    }
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    argon2id(memory, &params, version, password, raw_salt, &mut out).is_ok()
        // Output's equality is constant-time.
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// Argon2id into `out`, in `memory`.
fn argon2id(
    memory: &mut WorkingMemory,
    params: &Params,
    version: Version,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let blocks = memory
        .blocks(params.block_count())
        .ok_or("password hashing failed: no memory for Argon2id")?;
    Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Spends the same time as a real verification, for accounts that do not
/// exist, so that response timing does not reveal which usernames are real.
pub fn verify_against_dummy(memory: &mut WorkingMemory, password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("portcullis-dummy-password").unwrap_or_default());
    let _ = verify_password_in(memory, password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(a, b);
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsE", &a));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let made_there = theirs.hash_password(b"tr0ub4dor&3", &salt).unwrap();
        assert!(verify_password("tr0ub4dor&3", &made_there.to_string()));
        assert!(!verify_password("tr0ub4dor&4", &made_there.to_string()));
        let made_here = hash_password("tr0ub4dor&3").unwrap();
        let parsed = PasswordHash::new(&made_here).unwrap();
        assert!(theirs.verify_password(b"tr0ub4dor&3", &parsed).is_ok());
        // Other parameters, as an older release might have stored them.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 2, Some(24)).unwrap(),
        );
        let old = light.hash_password(b"tr0ub4dor&3", &salt).unwrap();
        assert!(verify_password("tr0ub4dor&3", &old.to_string()));
        // Argon2i and Argon2d are not what we store: never a match.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params());
        let other = argon2i.hash_password(b"tr0ub4dor&3", &salt).unwrap();
        assert!(!verify_password("tr0ub4dor&3", &other.to_string()));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password("x", ""));
    }
}
