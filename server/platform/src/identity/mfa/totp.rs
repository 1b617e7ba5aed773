//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 30-second steps,
//! 6 digits, and the otpauth URI authenticator apps read from a QR code.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one (clock drift between server and phone).
pub const WINDOW: u64 = 1;
/// Bytes of a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The step `unix_seconds` falls in.
pub fn step_at(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The HOTP value of `secret` at counter `step`, with `digits` digits (RFC 4226 §5.3).
pub fn code_at(secret: &[u8], step: u64, digits: u32) -> u32 {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = (u32::from(hash[offset]) & 0x7f) << 24
        | u32::from(hash[offset + 1]) << 16
        | u32::from(hash[offset + 2]) << 8
        | u32::from(hash[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The 6-digit code of `secret` at `step`, zero-padded as an app shows it.
pub fn display_code(secret: &[u8], step: u64) -> String {
    format!(
        "{:0width$}",
        code_at(secret, step, DIGITS),
        width = DIGITS as usize
    )
}

/// Whether `code` is well formed: exactly six ASCII digits once spaces are removed.
pub fn normalise(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// The step within the window around `now_step` whose code is `code` and which is later than
/// `last_step` (a step once used cannot be used again), or `None`.
pub fn matching_step(
    secret: &[u8],
    code: &str,
    now_step: u64,
    last_step: Option<u64>,
) -> Option<u64> {
    let code = normalise(code)?;
    let first = now_step.saturating_sub(WINDOW);
    (first..=now_step + WINDOW)
        .filter(|s| last_step.is_none_or(|last| *s > last))
        .find(|s| constant_time_eq(display_code(secret, *s).as_bytes(), code.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// RFC 4648 base32 (no padding) back to bytes, as an authenticator app reads a typed key;
/// `None` for a character outside the alphabet.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let value = BASE32.iter().position(|a| *a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://` URI of a secret: what the QR code holds.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        urlencode(issuer),
        urlencode(account),
        base32(secret),
        urlencode(issuer),
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed is the ASCII of "12345678901234567890", 8 digits.
    #[test]
    fn rfc_6238_sha1_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(code_at(seed, step_at(time), 8), expected, "T = {time}");
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0..9 with 6 digits.
    #[test]
    fn rfc_4226_hotp_test_vectors() {
        let seed = b"12345678901234567890";
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(code_at(seed, counter as u64, 6), *value);
        }
    }

    #[test]
    fn the_window_takes_one_step_either_side_and_never_a_used_one() {
        let secret = b"an example secret of twenty b";
        let now = 1_000_000;
        let previous = display_code(secret, now - 1);
        let next = display_code(secret, now + 1);
        let stale = display_code(secret, now - 2);
        assert_eq!(matching_step(secret, &previous, now, None), Some(now - 1));
        assert_eq!(matching_step(secret, &next, now, None), Some(now + 1));
        assert_eq!(matching_step(secret, &stale, now, None), None);
        // Once step `now` was used, neither it nor an earlier one is taken again.
        let current = display_code(secret, now);
        assert_eq!(matching_step(secret, &current, now, Some(now)), None);
        assert_eq!(matching_step(secret, &previous, now, Some(now - 1)), None);
    }

    #[test]
    fn malformed_codes_match_nothing() {
        let secret = b"12345678901234567890";
        for code in ["", "12345", "1234567", "12a456", "１２３４５６", "-12345"] {
            assert_eq!(normalise(code), None, "{code:?}");
            assert_eq!(matching_step(secret, code, 100, None), None);
        }
        assert_eq!(normalise(" 123 456 ").as_deref(), Some("123456"));
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri("wasm-as-os", "alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/wasm-as-os:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=wasm-as-os&algorithm=SHA1&digits=6&period=30"
        );
    }
}
