//! Password hashing with argon2id.
//!
//! Parameters follow the OWASP Password Storage Cheat Sheet's first argon2id recommendation:
//! **m = 19 MiB (19456 KiB), t = 2 iterations, p = 1 lane**, a 16-byte random salt and a 32-byte
//! output, stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so every hash
//! carries its own parameters and old hashes keep verifying after the parameters change
//! ([`needs_rehash`] tells the login path when to re-hash).
//!
//! One hash costs tens of milliseconds of CPU and 19 MiB of memory. The async wrappers therefore run
//! it on tokio's blocking pool and admit at most one hash per CPU core at a time: more would not add
//! throughput, and a login flood would otherwise pin hundreds of 19 MiB buffers at once.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use super::AuthError;

/// Memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Number of passes over the memory.
pub const T_COST: u32 = 2;
/// Degree of parallelism (lanes).
pub const P_COST: u32 = 1;
/// Hash output length in bytes.
pub const OUTPUT_LEN: usize = 32;
/// Salt length in bytes (the argon2 crate's recommended length).
pub const SALT_LEN: usize = 16;
/// The parameter segment every new PHC string carries; documented here so tests and docs agree.
pub const PASSWORD_HASH_PARAMS: &str = "m=19456,t=2,p=1";

/// Longest password input that is ever hashed. `validate_password` caps new passwords at 128
/// characters (at most 512 bytes); the cap here bounds the work a login with a huge "password" can
/// cause even before the body limit applies.
pub const MAX_PASSWORD_BYTES: usize = 1024;

// Stored hashes choose their own cost when verified. These ceilings refuse a corrupted or planted
// row that would make one login allocate gigabytes or spin for minutes.
const MAX_VERIFY_M_COST_KIB: u32 = 256 * 1024;
const MAX_VERIFY_T_COST: u32 = 16;
const MAX_VERIFY_P_COST: u32 = 16;

/// A PHC string with today's parameters whose salt and output are random bytes, so no password
/// verifies against it. Logins for unknown usernames verify against it so they take as long as
/// logins for real accounts. If the parameters change, update its parameter segment (a test fails
/// until then).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$8UaT3V9g0lhK3vkC1yvQsQ$Wj5NSOmvmgQgVFqnV0zhgqNNqAQVnMi2J6hF17sE0w4";

fn hasher() -> Argon2<'static> {
    // The constants are valid argon2 parameters; `params_are_valid` proves it in the tests.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("documented argon2 params are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `pw` with argon2id and a fresh random salt, returning the PHC string to store.
///
/// Blocks for tens of milliseconds: async callers use [`hash_password_async`].
pub fn hash_password(pw: &str) -> Result<String, AuthError> {
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Internal(format!("password longer than {MAX_PASSWORD_BYTES} bytes")));
    }
    let mut salt = [0u8; SALT_LEN];
    // ThreadRng is a CSPRNG seeded from the OS, which is what a salt needs.
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Internal(format!("salt encoding: {e}")))?;
    let hash = hasher()
        .hash_password(pw.as_bytes(), &salt)
        .map_err(|e| AuthError::Internal(format!("argon2 hashing: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `pw` matches the stored PHC string `phc`.
///
/// The comparison of the computed and stored outputs is constant-time (the `password-hash` crate's
/// `Output` equality). A malformed or implausibly expensive stored hash verifies as `false`.
pub fn verify_password(pw: &str, phc: &str) -> bool {
    if pw.len() > MAX_PASSWORD_BYTES {
        // No valid password is this long; still spend the usual time so length is no oracle.
        dummy_verify(pw);
        return false;
    }
    let parsed = match PasswordHash::new(phc) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash does not parse");
            return false;
        }
    };
    if !cost_is_acceptable(&parsed) {
        tracing::warn!("stored password hash has parameters above the verification ceiling");
        return false;
    }
    // `verify_password` re-hashes with the algorithm, version and parameters stored in `phc`.
    Argon2::default().verify_password(pw.as_bytes(), &parsed).is_ok()
}

/// Verifies `pw` against a fixed hash and discards the result, so that a login for a username that
/// does not exist costs the same time as one with a wrong password.
pub fn dummy_verify(pw: &str) {
    // Truncate on bytes (not chars): this input is never used for anything but burning time.
    let pw = &pw.as_bytes()[..pw.len().min(MAX_PASSWORD_BYTES)];
    if let Ok(parsed) = PasswordHash::new(DUMMY_HASH) {
        let _ = Argon2::default().verify_password(pw, &parsed);
    }
}

/// Whether a stored hash was made with other parameters than today's (or another algorithm), so the
/// login path should store a fresh [`hash_password`] of the password it just verified.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() || parsed.version != Some(u32::from(Version::V0x13)) {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => {
            p.m_cost() != M_COST_KIB
                || p.t_cost() != T_COST
                || p.p_cost() != P_COST
                || p.output_len() != Some(OUTPUT_LEN)
        }
        Err(_) => true,
    }
}

fn cost_is_acceptable(parsed: &PasswordHash<'_>) -> bool {
    match Params::try_from(parsed) {
        Ok(p) => {
            p.m_cost() <= MAX_VERIFY_M_COST_KIB && p.t_cost() <= MAX_VERIFY_T_COST && p.p_cost() <= MAX_VERIFY_P_COST
        }
        Err(_) => false,
    }
}

/// At most one hash per core runs at once, process-wide; see the module docs.
static HASH_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores.max(1)))
});

async fn run_blocking<T, F>(f: F) -> Result<T, AuthError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let permit = Arc::clone(&HASH_SLOTS)
        .acquire_owned()
        .await
        .map_err(|_| AuthError::Internal("password hashing slots closed".into()))?;
    // The permit moves into the blocking task: if the request is cancelled (timeout, disconnect)
    // the hash still finishes, and its memory stays counted until it does.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| AuthError::Internal(format!("password hashing task failed: {e}")))
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_async(pw: String) -> Result<String, AuthError> {
    run_blocking(move || hash_password(&pw)).await?
}

/// [`verify_password`] on the blocking pool. A failed task counts as a mismatch (and is logged).
pub async fn verify_password_async(pw: String, phc: String) -> bool {
    match run_blocking(move || verify_password(&pw, &phc)).await {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(error = %e, "password verification did not run");
            false
        }
    }
}

/// [`dummy_verify`] on the blocking pool.
pub async fn dummy_verify_async(pw: String) {
    if let Err(e) = run_blocking(move || dummy_verify(&pw)).await {
        tracing::error!(error = %e, "dummy password verification did not run");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_valid() {
        let _ = hasher();
    }

    #[test]
    fn hash_verifies_and_wrong_password_does_not() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("", &phc));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn hash_carries_documented_params_and_random_salt() {
        let a = hash_password("same password").unwrap();
        let b = hash_password("same password").unwrap();
        let prefix = format!("$argon2id$v=19${PASSWORD_HASH_PARAMS}$");
        assert!(a.starts_with(&prefix), "{a}");
        assert_eq!(a, a.trim());
        // Fresh salt each time: equal passwords must not produce equal rows.
        assert_ne!(a, b);
        let parsed = PasswordHash::new(&a).unwrap();
        assert_eq!(parsed.hash.unwrap().len(), OUTPUT_LEN);
    }

    #[test]
    fn dummy_hash_uses_current_params_and_runs() {
        // If this fails, the parameters changed: regenerate DUMMY_HASH with `hash_password`.
        assert!(DUMMY_HASH.starts_with(&format!("$argon2id$v=19${PASSWORD_HASH_PARAMS}$")));
        assert!(!needs_rehash(DUMMY_HASH));
        dummy_verify("whatever");
        dummy_verify(&"x".repeat(MAX_PASSWORD_BYTES * 4));
        assert!(!verify_password("whatever", DUMMY_HASH));
    }

    #[test]
    fn malformed_and_hostile_hashes_are_refused() {
        assert!(!verify_password("pw", ""));
        assert!(!verify_password("pw", "not a phc string"));
        assert!(!verify_password("pw", "$argon2id$v=19$m=19456,t=2,p=1$$"));
        // 4 GiB of memory would be allocated if this were trusted.
        assert!(!verify_password("pw", "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"));
        assert!(!verify_password(&"p".repeat(MAX_PASSWORD_BYTES + 1), DUMMY_HASH));
        assert!(hash_password(&"p".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn needs_rehash_spots_other_params() {
        let weaker = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, Some(32)).unwrap());
        let salt = SaltString::encode_b64(&[7u8; SALT_LEN]).unwrap();
        let old = weaker.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(needs_rehash(&old));
        // It still verifies, so the login path can upgrade it.
        assert!(verify_password("pw", &old));

        let argon2i =
            Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(M_COST_KIB, T_COST, P_COST, Some(32)).unwrap());
        let other_alg = argon2i.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(needs_rehash(&other_alg));
        assert!(needs_rehash("garbage"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_wrappers_run_on_blocking_pool() {
        let phc = hash_password_async("async password".into()).await.unwrap();
        assert!(verify_password_async("async password".into(), phc.clone()).await);
        assert!(!verify_password_async("wrong".into(), phc).await);
        dummy_verify_async("nobody".into()).await;
    }
}
