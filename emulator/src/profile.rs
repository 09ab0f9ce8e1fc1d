//! Device profiles: what a token says it is and how it behaves, as data (TOML), never code.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "jacarta-pki";

const BUILTIN: &[(&str, &str)] = &[
    ("jacarta-pki", include_str!("../profiles/jacarta-pki.toml")),
    (
        "jacarta-pki-pinpad",
        include_str!("../profiles/jacarta-pki-pinpad.toml"),
    ),
];

/// A device profile, e.g. `jacarta-pki`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub slot_description: String,
    /// Answer-to-reset as hex bytes separated by spaces.
    pub atr: String,
    pub usb_vendor: u16,
    pub usb_product: u16,
    pub hardware_version: [u8; 2],
    pub firmware_version: [u8; 2],
    pub user_pin_min: usize,
    pub user_pin_max: usize,
    pub so_pin_min: usize,
    pub so_pin_max: usize,
    pub user_pin_tries: u32,
    pub so_pin_tries: u32,
    pub default_user_pin: String,
    pub default_so_pin: String,
    pub protected_authentication_path: bool,
    pub kdf_iterations: u32,
    /// The key algorithms the token offers (its mechanisms follow). Tokens made before GOST
    /// came get what the default profile offers now.
    #[serde(default = "all_algorithms")]
    pub algorithms: Vec<Algorithm>,
    pub latency: Latency,
    /// The smart-card door (`kilt-card`); tokens made before it existed get the default's.
    #[serde(default)]
    pub card: CardIdentity,
}

/// A key algorithm a token may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// ECDSA on P-256.
    #[serde(rename = "p256")]
    P256,
    /// GOST 34.310-2004 (GOST R 34.10-2001 on CryptoPro-A, GOST 34.311-95 hash).
    #[serde(rename = "gost2004")]
    Gost2004,
    /// GOST R 34.10-2015 with 512-bit keys (tc26-512-paramSetA, Streebog-512).
    #[serde(rename = "gost2015-512")]
    Gost2015_512,
}

impl Algorithm {
    /// The token's key algorithm this names.
    pub fn key(self) -> crate::crypto::KeyAlgorithm {
        use crate::crypto::KeyAlgorithm;
        match self {
            Algorithm::P256 => KeyAlgorithm::P256,
            Algorithm::Gost2004 => KeyAlgorithm::Gost(kilt_gost::CurveId::CryptoProA),
            Algorithm::Gost2015_512 => KeyAlgorithm::Gost(kilt_gost::CurveId::Tc26_512A),
        }
    }
}

fn all_algorithms() -> Vec<Algorithm> {
    vec![
        Algorithm::P256,
        Algorithm::Gost2004,
        Algorithm::Gost2015_512,
    ]
}

/// What the token says it is as a smart card (ISO/IEC 7816-4 applications), beside the ATR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardIdentity {
    /// AID of the JaCarta PKI application (OpenSC pull request 3423).
    pub jacarta_aid: String,
    /// AID of the PIV application (NIST SP 800-73-4 Part 1 §2.2), with its version.
    pub piv_aid: String,
    /// The PIV card management key (3DES, key reference 9B); the default is the one
    /// yubico-piv-tool assumes.
    pub piv_management_key: String,
}

impl Default for CardIdentity {
    fn default() -> CardIdentity {
        Profile::default_profile().card
    }
}

/// Bytes written as hex pairs separated by spaces ("3B DC 18").
pub fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    s.split_whitespace()
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect()
}

/// Per-operation device timings in milliseconds, applied only when latency emulation is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub login: u64,
    pub generate_key_pair: u64,
    pub sign: u64,
    pub verify: u64,
    pub create_object: u64,
    pub destroy_object: u64,
    pub find_objects: u64,
}

/// Operations that have a device timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedOp {
    Login,
    GenerateKeyPair,
    Sign,
    Verify,
    CreateObject,
    DestroyObject,
    FindObjects,
}

impl Latency {
    /// How long `op` takes on the device.
    pub fn of(&self, op: TimedOp) -> Duration {
        Duration::from_millis(match op {
            TimedOp::Login => self.login,
            TimedOp::GenerateKeyPair => self.generate_key_pair,
            TimedOp::Sign => self.sign,
            TimedOp::Verify => self.verify,
            TimedOp::CreateObject => self.create_object,
            TimedOp::DestroyObject => self.destroy_object,
            TimedOp::FindObjects => self.find_objects,
        })
    }
}

impl Profile {
    /// Names of the profiles built into kilt.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// A built-in profile by name, or a profile read from a TOML file path.
    pub fn load(name_or_path: &str) -> Result<Profile> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(text);
        }
        if name_or_path.ends_with(".toml") {
            let text = std::fs::read_to_string(name_or_path)
                .map_err(|e| Error::Profile(format!("cannot read {name_or_path}: {e}")))?;
            return Profile::parse(&text);
        }
        Err(Error::Profile(format!(
            "unknown profile {name_or_path:?}; built in: {}; or give a path to a .toml file",
            Profile::builtin_names().collect::<Vec<_>>().join(", ")
        )))
    }

    /// The default profile (`jacarta-pki`).
    /// Whether the token makes and uses keys of `alg`.
    pub fn offers(&self, alg: crate::crypto::KeyAlgorithm) -> bool {
        self.algorithms.iter().any(|a| a.key() == alg)
    }

    pub fn default_profile() -> Profile {
        // The embedded profile is checked by a unit test, so this cannot fail at run time.
        Profile::load(DEFAULT_PROFILE).unwrap_or_else(|e| panic!("built-in profile broken: {e}"))
    }

    /// Parses and checks a profile.
    pub fn parse(text: &str) -> Result<Profile> {
        let p: Profile = toml::from_str(text).map_err(|e| Error::Profile(e.message().into()))?;
        p.validate()?;
        Ok(p)
    }

    /// The profile as TOML, as stored in a token so it keeps its identity.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Profile(m.into()));
        if self.user_pin_min == 0 || self.user_pin_min > self.user_pin_max {
            return bad("user_pin_min must be between 1 and user_pin_max");
        }
        if self.so_pin_min == 0 || self.so_pin_min > self.so_pin_max {
            return bad("so_pin_min must be between 1 and so_pin_max");
        }
        if self.user_pin_tries == 0 || self.so_pin_tries == 0 {
            return bad("PIN tries must be at least 1");
        }
        if self.kdf_iterations == 0 {
            return bad("kdf_iterations must be at least 1");
        }
        if self.manufacturer.len() > 32 || self.model.len() > 16 || self.slot_description.len() > 64
        {
            return bad(
                "manufacturer ≤ 32, model ≤ 16, slot_description ≤ 64 bytes (PKCS#11 fields)",
            );
        }
        if self.atr_bytes().is_none() {
            return bad("atr must be hex bytes separated by spaces");
        }
        let c = &self.card;
        if [&c.jacarta_aid, &c.piv_aid, &c.piv_management_key]
            .iter()
            .any(|v| hex_bytes(v).is_none_or(|b| b.is_empty()))
        {
            return bad(
                "card.jacarta_aid, card.piv_aid and card.piv_management_key must be hex bytes",
            );
        }
        Ok(())
    }

    /// The ATR as bytes.
    pub fn atr_bytes(&self) -> Option<Vec<u8>> {
        hex_bytes(&self.atr)
    }

    /// The description of slot `index` as pcsc-lite names the `index`-th reader of one kind:
    /// `"<reader> %02X %02X"` with the reader's number and the slot in it (pcsc-lite
    /// `readerfactory.c`, `RFSetReaderName`), so a second JaCarta is `"… JaCarta 01 00"` as NSS
    /// and `modutil -list` show it with real devices. A description not ending in two hex pairs
    /// is used as it is.
    pub fn reader_description(&self, index: u64) -> String {
        let d = &self.slot_description;
        let pair = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit());
        match d
            .len()
            .checked_sub(6)
            .and_then(|at| d.get(at..).map(|t| (at, t)))
        {
            Some((at, tail))
                if tail.starts_with(' ')
                    && pair(&tail[1..3])
                    && &tail[3..4] == " "
                    && pair(&tail[4..]) =>
            {
                format!("{} {index:02X} {}", &d[..at], &tail[4..])
            }
            _ => d.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_named_like_pcsc_readers_of_one_kind() {
        let mut p = Profile::default_profile();
        assert_eq!(p.reader_description(0), "Aladdin R.D. JaCarta 00 00");
        assert_eq!(p.reader_description(1), "Aladdin R.D. JaCarta 01 00");
        assert_eq!(p.reader_description(0x1b), "Aladdin R.D. JaCarta 1B 00");
        p.slot_description = "Reader 0A 01".into();
        assert_eq!(p.reader_description(2), "Reader 02 01");
        for free in [
            "Reader",
            "Reader 0G 00",
            "Reader 000 00",
            "00 00",
            "Ридер 00 0",
        ] {
            p.slot_description = free.into();
            assert_eq!(p.reader_description(5), free);
        }
    }

    #[test]
    fn builtin_profiles_parse_and_carry_the_device_identity() {
        for name in Profile::builtin_names() {
            let p = Profile::load(name).unwrap();
            assert_eq!(p.name, name);
            assert_eq!(p.manufacturer, "Aladdin R.D.");
            assert_eq!(p.model, "JaCarta PKI");
            assert_eq!(p.slot_description, "Aladdin R.D. JaCarta 00 00");
            assert_eq!(p.atr_bytes().unwrap().len(), 22);
            assert_eq!((p.usb_vendor, p.usb_product), (0x24DC, 0x0101));
            assert_eq!((p.user_pin_tries, p.so_pin_tries), (10, 10));
            assert_eq!(p.default_user_pin, "1234567890");
            assert_eq!(p.default_so_pin, "00000000");
        }
        assert!(
            !Profile::load("jacarta-pki")
                .unwrap()
                .protected_authentication_path
        );
        assert!(
            Profile::load("jacarta-pki-pinpad")
                .unwrap()
                .protected_authentication_path
        );
    }

    #[test]
    fn a_profile_round_trips_through_toml() {
        let p = Profile::default_profile();
        assert_eq!(Profile::parse(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn bad_profiles_are_refused_with_a_reason() {
        let err = Profile::load("no-such-device").unwrap_err().to_string();
        assert!(err.contains("jacarta-pki"), "{err}");
        let mut p = Profile::default_profile();
        p.user_pin_min = 20;
        assert!(Profile::parse(&p.to_toml()).is_err());
        let text = Profile::default_profile().to_toml() + "\nbogus = 1\n";
        assert!(Profile::parse(&text).is_err());
    }
}
