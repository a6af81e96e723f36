//! The cache entries' MAC: HMAC-SHA256 (the `hmac` crate, whose
//! `verify_slice` compares in constant time).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MAC_LEN: usize = 32;

pub type HmacSha256 = Hmac<Sha256>;

/// A MAC under `key` over the concatenation of `parts`, to finalize or
/// verify.
pub fn keyed(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The MAC of the concatenation of `parts` under `key`, for tests that
/// forge entries.
#[cfg(test)]
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    keyed(key, parts).finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231, test cases 1 and 2, the second split in parts.
    #[test]
    fn matches_the_rfc_4231_vectors() {
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], &[b"Hi There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let parts: [&[u8]; 2] = [b"what do ya want ", b"for nothing?"];
        let mac = hmac_sha256(b"Jefe", &parts);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(keyed(b"Jefe", &parts).verify_slice(&mac).is_ok());
        assert!(keyed(b"Jeff", &parts).verify_slice(&mac).is_err());
        assert!(keyed(b"Jefe", &parts).verify_slice(&mac[..31]).is_err());
    }
}
