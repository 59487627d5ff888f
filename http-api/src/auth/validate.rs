//! Validation of usernames, display names and passwords.
//!
//! Each refusal carries the field, a stable machine-readable `code` (API clients branch on it) and a
//! human-readable message. Codes: `too_short`, `too_long`, `invalid_chars`, `invalid_start`,
//! `double_space`, `reserved`, `contains_username`, `too_common`, `too_simple`.
//!
//! - **Usernames** are the login handle: 3 to 20 of `[a-z0-9_]`, case-insensitive (stored
//!   lower-case), not starting with `_`. ASCII only, so no two usernames look alike.
//! - **Display names** are what other players see: 1 to 24 characters (at most 32 bytes) of Unicode
//!   letters and digits plus space, `_`, `-` and `.`. Control and format characters (bidi overrides,
//!   zero-width joiners and spaces) are refused because they let one name render as another.
//! - **Passwords** follow NIST SP 800-63B: length is what matters (8 to 128 characters, any
//!   printable character), plus a blocklist of common, repetitive and sequential passwords and of
//!   passwords containing the username. No composition rules.
//!
//! Names that could pass for staff or the system (`admin`, `Mod 2`, `a_d_m_i_n`) are reserved:
//! the comparison ignores case, digits and the separators `_`, `-`, `.` and space.

use serde::Serialize;

/// A refused input: which field, a stable code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The request field, e.g. "username".
    pub field: &'static str,
    /// A stable code, e.g. "too_short", "reserved", "invalid_chars".
    pub code: &'static str,
    /// A human-readable explanation.
    pub message: String,
}

impl ValidationError {
    fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ValidationError { field, code, message: message.into() }
    }
}

/// Username length bounds, in characters (which are ASCII, so also bytes).
pub const USERNAME_MIN: usize = 3;
/// See [`USERNAME_MIN`].
pub const USERNAME_MAX: usize = 20;
/// Display name length bounds, in characters.
pub const DISPLAY_NAME_MIN: usize = 1;
/// See [`DISPLAY_NAME_MIN`].
pub const DISPLAY_NAME_MAX: usize = 24;
/// Display names also fit in this many UTF-8 bytes, bounding wire and scoreboard sizes.
pub const DISPLAY_NAME_MAX_BYTES: usize = 32;
/// Password length bounds, in characters.
pub const PASSWORD_MIN: usize = 8;
/// See [`PASSWORD_MIN`].
pub const PASSWORD_MAX: usize = 128;

/// Names (compared after [`skeleton`]) that nobody may register or display.
const RESERVED: &[&str] = &[
    "abuse",
    "account",
    "accounts",
    "admin",
    "administrator",
    "all",
    "anon",
    "anonymous",
    "api",
    "auth",
    "bot",
    "bots",
    "console",
    "deleted",
    "dev",
    "developer",
    "developers",
    "everyone",
    "false",
    "gamemaster",
    "gm",
    "guest",
    "help",
    "helpdesk",
    "here",
    "host",
    "hostmaster",
    "localhost",
    "login",
    "logout",
    "me",
    "mod",
    "moderator",
    "moderators",
    "mods",
    "nil",
    "nobody",
    "none",
    "noreply",
    "null",
    "official",
    "operator",
    "owner",
    "postmaster",
    "register",
    "root",
    "security",
    "self",
    "server",
    "settings",
    "signin",
    "signup",
    "staff",
    "support",
    "sys",
    "sysadmin",
    "sysop",
    "system",
    "team",
    "trespasser",
    "trespassers",
    "true",
    "undefined",
    "unknown",
    "void",
    "webmaster",
    "www",
];

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// The lookup form of a username: trimmed and ASCII-lower-cased, without validation. Login uses it
/// so that `Alice` finds `alice`; an input that is not a valid username simply finds no account.
pub fn normalize_username(input: &str) -> String {
    input.trim().to_ascii_lowercase()
}

/// Validates a username for registration and returns its stored (lower-case) form.
pub fn validate_username(input: &str) -> Result<String, ValidationError> {
    const F: &str = "username";
    let name = input.trim();
    // Checked on bytes first so a megabyte of input is refused without walking it.
    if name.len() > USERNAME_MAX * 4 || name.chars().count() > USERNAME_MAX {
        return Err(ValidationError::new(F, "too_long", format!("at most {USERNAME_MAX} characters")));
    }
    if name.chars().count() < USERNAME_MIN {
        return Err(ValidationError::new(F, "too_short", format!("at least {USERNAME_MIN} characters")));
    }
    // Check the ASCII set before lower-casing: Unicode lower-casing maps e.g. the Kelvin sign to 'k',
    // which would let look-alike input through.
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ValidationError::new(F, "invalid_chars", "only letters a-z, digits 0-9 and '_'"));
    }
    if name.starts_with('_') {
        return Err(ValidationError::new(F, "invalid_start", "may not start with '_'"));
    }
    let name = name.to_ascii_lowercase();
    if is_reserved(&name) {
        return Err(ValidationError::new(F, "reserved", "this name is reserved"));
    }
    Ok(name)
}

/// Validates a display name and returns it with surrounding whitespace trimmed.
pub fn validate_display_name(input: &str) -> Result<String, ValidationError> {
    const F: &str = "display_name";
    let name = input.trim();
    if name.len() > DISPLAY_NAME_MAX_BYTES || name.chars().count() > DISPLAY_NAME_MAX {
        return Err(ValidationError::new(
            F,
            "too_long",
            format!("at most {DISPLAY_NAME_MAX} characters and {DISPLAY_NAME_MAX_BYTES} bytes"),
        ));
    }
    if name.chars().count() < DISPLAY_NAME_MIN {
        return Err(ValidationError::new(F, "too_short", "may not be empty"));
    }
    // Letters and digits of any script; control and format characters (Cc, Cf: bidi overrides,
    // zero-width spaces and joiners) and combining marks are neither, so they fall out here.
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.')) {
        return Err(ValidationError::new(F, "invalid_chars", "only letters, digits, spaces, '_', '-' and '.'"));
    }
    if name.contains("  ") {
        return Err(ValidationError::new(F, "double_space", "no consecutive spaces"));
    }
    if is_reserved(name) {
        return Err(ValidationError::new(F, "reserved", "this name is reserved"));
    }
    Ok(name.to_owned())
}

/// Validates a new password for the account `username` (the raw or normalized username).
pub fn validate_password(pw: &str, username: &str) -> Result<(), ValidationError> {
    const F: &str = "password";
    // Passwords are never trimmed: every character counts.
    if pw.len() > PASSWORD_MAX * 4 || pw.chars().count() > PASSWORD_MAX {
        return Err(ValidationError::new(F, "too_long", format!("at most {PASSWORD_MAX} characters")));
    }
    if pw.chars().count() < PASSWORD_MIN {
        return Err(ValidationError::new(F, "too_short", format!("at least {PASSWORD_MIN} characters")));
    }
    if pw.chars().any(char::is_control) {
        return Err(ValidationError::new(F, "invalid_chars", "no control characters"));
    }
    let lower = pw.to_lowercase();
    let user = normalize_username(username);
    if !user.is_empty() && lower.contains(&user) {
        return Err(ValidationError::new(F, "contains_username", "may not contain the username"));
    }
    if is_common(&lower) {
        return Err(ValidationError::new(F, "too_common", "this password is too common"));
    }
    if is_repetitive_or_sequential(&lower) {
        return Err(ValidationError::new(F, "too_simple", "no repeated patterns or sequences like 12345678"));
    }
    Ok(())
}

/// The form names are compared in for reservation: lower-case, with digits and separators removed,
/// so that `Admin`, `admin_1`, `a.d.m.i.n` and `Mod 2` all compare as the reserved word.
fn skeleton(name: &str) -> String {
    name.chars()
        .filter(|c| !(c.is_numeric() || matches!(c, ' ' | '_' | '-' | '.')))
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_reserved(name: &str) -> bool {
    let skeleton = skeleton(name);
    RESERVED.contains(&skeleton.as_str())
}

fn is_common(lower: &str) -> bool {
    // Trailing digits and punctuation are the usual "strengthening" ("password1!", "qwerty2024").
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    COMMON_PASSWORDS
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .any(|common| common == lower || common == stem)
}

/// "aaaaaaaa", "abababab", "12341234" (a block of up to four characters repeated), "abcdefgh",
/// "87654321", "34567890" (one step up or down each time; digits wrap from 9 to 0).
fn is_repetitive_or_sequential(lower: &str) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    let repeated =
        (1..=4).any(|block| block < chars.len() && chars.iter().enumerate().all(|(i, c)| *c == chars[i % block]));
    if repeated {
        return true;
    }
    let steps: Vec<Option<i32>> = chars.windows(2).map(|w| step(w[0], w[1])).collect();
    steps.iter().all(|s| *s == Some(1)) || steps.iter().all(|s| *s == Some(-1))
}

fn step(a: char, b: char) -> Option<i32> {
    if a.is_ascii_digit() && b.is_ascii_digit() {
        // Modulo 10 so "7890" counts as a run; map 9 back to -1 for descending runs.
        let d = (b as i32 - a as i32).rem_euclid(10);
        return Some(if d == 9 { -1 } else { d });
    }
    if a.is_ascii_lowercase() && b.is_ascii_lowercase() {
        return Some(b as i32 - a as i32);
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn code(r: Result<impl std::fmt::Debug, ValidationError>) -> &'static str {
        r.expect_err("expected a refusal").code
    }

    #[test]
    fn usernames_accepted_and_normalized() {
        assert_eq!(validate_username("alice").unwrap(), "alice");
        assert_eq!(validate_username("Alice_99").unwrap(), "alice_99");
        assert_eq!(validate_username("  Bob  ").unwrap(), "bob");
        assert_eq!(validate_username("abc").unwrap(), "abc");
        assert_eq!(validate_username("a".repeat(20).as_str()).unwrap(), "a".repeat(20));
        assert_eq!(validate_username("robot").unwrap(), "robot");
        assert_eq!(validate_username("badminton").unwrap(), "badminton");
        assert_eq!(normalize_username(" ALICE "), "alice");
    }

    #[test]
    fn username_rules_and_codes() {
        assert_eq!(code(validate_username("")), "too_short");
        assert_eq!(code(validate_username("ab")), "too_short");
        assert_eq!(code(validate_username("a".repeat(21).as_str())), "too_long");
        assert_eq!(code(validate_username("x".repeat(1_000_000).as_str())), "too_long");
        for bad in
            ["al ice", "alice!", "alice-b", "al.ice", "élise", "ali\u{200b}ce", "\u{212a}elvin", "alice\0", "用户名字"]
        {
            assert_eq!(code(validate_username(bad)), "invalid_chars", "{bad:?}");
        }
        assert_eq!(code(validate_username("_alice")), "invalid_start");
        for reserved in ["admin", "ADMIN", "Administrator", "root", "system", "moderator", "mod", "support", "staff"] {
            assert_eq!(code(validate_username(reserved)), "reserved", "{reserved}");
        }
        for reserved in ["trespasser", "server", "api", "null", "undefined", "anonymous", "guest", "bot", "everyone"] {
            assert_eq!(code(validate_username(reserved)), "reserved", "{reserved}");
        }
        for disguised in ["admin_1", "admin123", "a_d_m_i_n", "mod_42", "bot7"] {
            assert_eq!(code(validate_username(disguised)), "reserved", "{disguised}");
        }
        let err = validate_username("ab").unwrap_err();
        assert_eq!(err.field, "username");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn display_names_accepted_and_trimmed() {
        assert_eq!(validate_display_name("  Alice  ").unwrap(), "Alice");
        assert_eq!(validate_display_name("X").unwrap(), "X");
        assert_eq!(validate_display_name("Dr. Strange-Love_2").unwrap(), "Dr. Strange-Love_2");
        assert_eq!(validate_display_name("Zoë Ångström").unwrap(), "Zoë Ångström");
        assert_eq!(validate_display_name("東京の忍者").unwrap(), "東京の忍者");
        assert_eq!(validate_display_name("Мария").unwrap(), "Мария");
        assert_eq!(validate_display_name("a".repeat(24).as_str()).unwrap(), "a".repeat(24));
    }

    #[test]
    fn display_name_rules_and_codes() {
        assert_eq!(code(validate_display_name("")), "too_short");
        assert_eq!(code(validate_display_name("   ")), "too_short");
        assert_eq!(code(validate_display_name("a".repeat(25).as_str())), "too_long");
        // 11 characters but 33 bytes.
        assert_eq!(code(validate_display_name("忍".repeat(11).as_str())), "too_long");
        for bad in [
            "evil\u{202e}gnp.exe", // right-to-left override
            "zero\u{200b}width",   // zero-width space
            "join\u{200d}er",      // zero-width joiner
            "bom\u{feff}",         // byte order mark
            "tab\there",
            "new\nline",
            "nul\0",
            "emoji 😀",
            "<script>",
            "a/b",
            "e\u{301}", // combining acute accent: decomposed input is refused (no normalization here)
            "no\u{a0}break",
        ] {
            assert_eq!(code(validate_display_name(bad)), "invalid_chars", "{bad:?}");
        }
        assert_eq!(code(validate_display_name("two  spaces")), "double_space");
        let err = validate_display_name("Admin").unwrap_err();
        assert_eq!((err.field, err.code), ("display_name", "reserved"));
        for reserved in
            ["admin", "ADMIN", "Mod", "Moderator 2", "a.d.m.i.n", "Trespasser", "Bot 3", "GM", "System-1", "NULL"]
        {
            assert_eq!(code(validate_display_name(reserved)), "reserved", "{reserved}");
        }
    }

    #[test]
    fn passwords_accepted() {
        validate_password("correct horse battery staple", "alice").unwrap();
        validate_password("Tr0ub4dor&3x", "alice").unwrap();
        validate_password("ünïcödé pässwörd", "alice").unwrap();
        validate_password(&"q7#Lm2$x".repeat(16), "alice").unwrap(); // exactly 128 characters
    }

    #[test]
    fn password_rules_and_codes() {
        assert_eq!(code(validate_password("", "alice")), "too_short");
        assert_eq!(code(validate_password("short12", "alice")), "too_short");
        assert_eq!(code(validate_password(&"x7".repeat(65), "alice")), "too_long");
        assert_eq!(code(validate_password(&"x".repeat(1_000_000), "alice")), "too_long");
        assert_eq!(code(validate_password("good pass\u{0}word", "alice")), "invalid_chars");
        assert_eq!(code(validate_password("alice-is-great", "alice")), "contains_username");
        assert_eq!(code(validate_password("xxALICExx99", "Alice")), "contains_username");
        for common in
            ["password", "Password1", "password123!", "qwerty123", "iloveyou", "letmein2024", "trespasser1", "1q2w3e4r"]
        {
            assert_eq!(code(validate_password(common, "alice")), "too_common", "{common}");
        }
        for simple in [
            "aaaaaaaa",
            "abababab",
            "12341234",
            "abcabcabc",
            "12345678",
            "87654321",
            "abcdefgh",
            "4567890123",
            "zyxwvuts",
            "ab1!".repeat(32).as_str(),
        ] {
            assert_eq!(code(validate_password(simple, "alice")), "too_simple", "{simple}");
        }
        let err = validate_password("short", "alice").unwrap_err();
        assert_eq!(err.field, "password");
        assert_eq!(err.to_string(), "password: at least 8 characters");
    }

    #[test]
    fn common_list_is_clean() {
        for line in COMMON_PASSWORDS.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            assert_eq!(line, line.trim(), "stray whitespace in {line:?}");
            assert_eq!(line, line.to_lowercase(), "{line:?} must be lower-case");
        }
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC{0,64}|.{0,64}", u in "\\PC{0,24}") {
            let _ = validate_username(&s);
            let _ = validate_display_name(&s);
            let _ = validate_password(&s, &u);
            let _ = normalize_username(&s);
        }

        #[test]
        fn accepted_names_are_fixed_points(s in "[ A-Za-z0-9_.\\-]{0,30}") {
            if let Ok(name) = validate_username(&s) {
                prop_assert_eq!(validate_username(&name).unwrap(), name.clone());
                prop_assert_eq!(normalize_username(&s), name);
            }
            if let Ok(name) = validate_display_name(&s) {
                prop_assert_eq!(validate_display_name(&name).unwrap(), name);
            }
        }
    }
}
