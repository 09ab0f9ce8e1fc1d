//! The bank's state and rules without HTTP: subscribers and their profiles, login by a signed
//! challenge, and the key-set regeneration of seed 000. Statuses change only here; clients
//! read them by polling. Time-driven processing is evaluated on every read ([`Bank::tick`]),
//! so it survives restarts without a scheduler.

use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use kilt_mock_server::db::Db;

use kilt_mock_server::gost_ca::{GostCa, GostCertSpec, Subject};
use kilt_mock_server::pki::{
    Algorithm, Pki, PkiNames, UserCertSpec, UserKey, parse_csr, random_serial,
};
use kilt_protocol::Lang;
use kilt_protocol::bank::{
    IssuedCertificate, Login, Profile, Provisioned, Regeneration, Session, SignatureParams, Status,
    Submit, activation_message, login_message, switched_message,
};
use kilt_protocol::ca::{CertKind, Clock};
use rusqlite::{Connection, OptionalExtension, params};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::error::{BankError, Result};

/// Default validity of certificates the bank issues.
pub const DEFAULT_VALIDITY_DAYS: i64 = 365;
/// A profile whose certificate ends within this many days is critical (seed 000: 30 days).
pub const DEFAULT_WARN_DAYS: i64 = 30;
/// Seconds between "Принят банком" and "Получен новый сертификат" with automatic processing.
pub const DEFAULT_PROCESSING_SECONDS: u64 = 2;
/// Session lifetime.
pub const DEFAULT_SESSION_SECONDS: u64 = 30 * 60;
/// Challenge lifetime.
pub const CHALLENGE_SECONDS: u64 = 120;
/// "Криптография".
pub const CRYPTOGRAPHY: &str = "Tumar CSP";

/// The bank's names: a bank CA, not a national one.
pub const BANK_NAMES: PkiNames = PkiNames {
    root: "kilt Банк — корневой УЦ (тестовый)",
    issuing: "kilt Банк — УЦ ЭЦП BS-Client (тестовый)",
    tls: "kilt-bank localhost",
};

/// How the bank processes requests.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Validity of new certificates, days.
    pub validity_days: i64,
    /// The critical window, days.
    pub warn_days: i64,
    /// Process accepted requests by themselves after `processing_seconds` (else only the
    /// operator's approval does).
    pub auto_process: bool,
    /// The processing delay, seconds.
    pub processing_seconds: u64,
    /// Session lifetime, seconds.
    pub session_seconds: u64,
    /// CRL distribution point written into certificates.
    pub crl_url: String,
    /// The algorithm new subscribers' keys must have, and so the CA that certifies them (a
    /// regeneration keeps its profile's algorithm whatever this says).
    pub algorithm: Algorithm,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            validity_days: DEFAULT_VALIDITY_DAYS,
            warn_days: DEFAULT_WARN_DAYS,
            auto_process: true,
            processing_seconds: DEFAULT_PROCESSING_SECONDS,
            session_seconds: DEFAULT_SESSION_SECONDS,
            crl_url: "https://127.0.0.1/crl/bank.crl".into(),
            algorithm: Algorithm::P256,
        }
    }
}

/// Everything the bank holds, for "changes nothing" checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// (identifier, subscriber).
    pub profiles: Vec<(String, String)>,
    /// (serial, profile, state).
    pub certificates: Vec<(String, String, String)>,
    /// Every regeneration.
    pub regenerations: Vec<Regeneration>,
}

/// The bank.
pub struct Bank {
    /// The approval mode now; `settings.auto_process` is only where it starts (`/admin/approval`).
    approval: kilt_mock_server::http::ApprovalSwitch,
    db: Db,
    pki: Pki,
    /// The GOST CAs this bank has (the configured algorithm's, and any an earlier start made).
    gost: Vec<GostCa>,
    settings: Settings,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS profiles(identifier TEXT PRIMARY KEY, subscriber TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS certificates(
    serial TEXT PRIMARY KEY, profile TEXT NOT NULL REFERENCES profiles(identifier),
    der BLOB NOT NULL, key BLOB NOT NULL UNIQUE, not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('active','pending','retired')));
CREATE UNIQUE INDEX IF NOT EXISTS one_active ON certificates(profile) WHERE state='active';
CREATE TABLE IF NOT EXISTS challenges(challenge TEXT PRIMARY KEY, profile TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(token TEXT PRIMARY KEY, profile TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS regenerations(
    id INTEGER PRIMARY KEY, profile TEXT NOT NULL REFERENCES profiles(identifier),
    status TEXT NOT NULL, reason TEXT, csr BLOB, csr_key BLOB UNIQUE, new_serial TEXT,
    accepted_at INTEGER, created INTEGER NOT NULL);
";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG works");
    hex::encode(bytes)
}

pub use kilt_protocol::bank::key_identifier;

/// The key of a certificate the bank issued (DER): one that does not read is the bank's fault.
fn cert_key(certificate: &[u8]) -> Result<UserKey> {
    UserKey::of_certificate(certificate).map_err(BankError::Internal)
}

/// Checks a hex signature over `message` by `key`: ECDSA DER for P-256, the certificates'
/// little-endian r ‖ s for GOST (see `kilt_protocol::bank`).
fn verify(key: &UserKey, message: &[u8], signature_hex: &str, which: &'static str) -> Result<()> {
    let signature =
        hex::decode(signature_hex.trim()).map_err(|_| BankError::BadSignature(which))?;
    if key.verify(message, &signature) {
        Ok(())
    } else {
        Err(BankError::BadSignature(which))
    }
}

/// The name of the bank's GOST CA of `profile`.
fn gost_ca_name(profile: kilt_gost::Profile) -> &'static str {
    match profile {
        kilt_gost::Profile::Gost2004 => "kilt Банк — УЦ ЭЦП BS-Client ГОСТ 34.310-2004 (тестовый)",
        kilt_gost::Profile::Gost2015_512 => {
            "kilt Банк — УЦ ЭЦП BS-Client ГОСТ Р 34.10-2015 (тестовый)"
        }
    }
}

fn pem_der(pem: &str, what: &str) -> Result<Vec<u8>> {
    ::pem::parse(pem.trim())
        .map(|p| p.contents().to_vec())
        .map_err(|_| BankError::InvalidInput(format!("{what} is not PEM")))
}

fn description(lang: Lang) -> String {
    lang.pick(
        "Регенерация комплекта ключей: 1) новый ключ создаётся на токене; 2) запрос на сертификат \
         подписывается действующим ключом и отправляется в банк («Отправить документ в банк», «Подписать»); \
         3) банк обрабатывает запрос — обновляйте страницу, пока статус не станет «Получен новый сертификат»; \
         4) «Получить сертификат (ключ)»; 5) «Продолжить» — работа переводится на новый комплект ключей.",
        "Кілттер жинағын қайта шығару: 1) жаңа кілт токенде жасалады; 2) сертификатқа сұраныс қолданыстағы \
         кілтпен қол қойылып, банкке жіберіледі; 3) банк сұранысты өңдейді — мәртебе «Жаңа сертификат алынды» \
         болғанша бетті жаңартыңыз; 4) «Сертификатты (кілтті) алу»; 5) «Жалғастыру».",
        "Key-set regeneration: 1) a new key is made on the token; 2) the certificate request is signed with \
         the current key and sent to the bank; 3) the bank processes it — refresh until the status is \
         \"New certificate received\"; 4) \"Get certificate (key)\"; 5) \"Continue\" switches you to the new key set.",
    )
    .to_owned()
}

impl Bank {
    /// Opens (or creates) the bank in `dir`.
    pub fn open(dir: &Path, settings: Settings) -> Result<Bank> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BankError::Pki(kilt_mock_server::error::ServerError::io(dir, e)))?;
        let db = Db::open(&dir.join("bank.sqlite"), SCHEMA)?;
        kilt_mock_server::db::repair_clock(&db.lock())?;
        let now = kilt_mock_server::db::clock_now(&db.lock())?;
        let pki = Pki::load_or_create(dir, now, BANK_NAMES).map_err(BankError::Pki)?;
        let mut gost = vec![];
        for profile in Algorithm::ALL.into_iter().filter_map(Algorithm::gost) {
            if settings.algorithm.gost() == Some(profile) || GostCa::present(dir, profile) {
                gost.push(
                    GostCa::load_or_create(dir, profile, gost_ca_name(profile), now)
                        .map_err(BankError::Pki)?,
                );
            }
        }
        Ok(Bank {
            approval: kilt_mock_server::http::ApprovalSwitch::new(!settings.auto_process),
            db,
            pki,
            gost,
            settings,
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock()
    }

    /// The bank's PKI (its CA and TLS identity).
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The bank's GOST CA of `profile`, if it has one.
    pub fn gost_ca(&self, profile: kilt_gost::Profile) -> Option<&GostCa> {
        self.gost.iter().find(|ca| ca.profile() == profile)
    }

    /// The chain above a certificate for `key`, issuing CA first (PEM): the P-256 issuing CA
    /// and root, or the GOST CA.
    fn chain(&self, key: &UserKey) -> Vec<String> {
        match key {
            UserKey::P256(_) => vec![
                self.pki.issuing_pem().to_owned(),
                self.pki.root_pem().to_owned(),
            ],
            UserKey::Gost(profile, _) => self
                .gost_ca(*profile)
                .map(|ca| kilt_mock_server::pki::to_pem(ca.certificate()))
                .into_iter()
                .collect(),
        }
    }

    /// Whether new requests wait for the operator, switchable at run time.
    pub fn approval(&self) -> &kilt_mock_server::http::ApprovalSwitch {
        &self.approval
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn now_in(conn: &Connection) -> Result<OffsetDateTime> {
        Ok(kilt_mock_server::db::clock_now(conn)?)
    }

    /// The bank's now (system clock plus the admin's shift).
    pub fn now(&self) -> Result<OffsetDateTime> {
        Self::now_in(&self.db())
    }

    /// The bank's clock.
    pub fn clock(&self) -> Result<Clock> {
        Ok(kilt_mock_server::db::clock_at(
            kilt_mock_server::db::clock_offset(&self.db())?,
        ))
    }

    /// Moves the bank's clock by `days`; returns the clock after the shift.
    pub fn shift_clock(&self, days: i64) -> Result<Clock> {
        let offset = kilt_mock_server::db::shift_clock(&self.db(), days)?.map_err(|r| match r {
            kilt_mock_server::db::ClockRefusal::TooFar(why) => BankError::InvalidInput(why),
            kilt_mock_server::db::ClockRefusal::OutOfRange(why) => BankError::Conflict(why),
        })?;
        Ok(kilt_mock_server::db::clock_at(offset))
    }

    fn issue(
        &self,
        conn: &Connection,
        profile: &str,
        subscriber: &str,
        key: &UserKey,
        days: i64,
        state: &str,
    ) -> Result<String> {
        let now = Self::now_in(conn)?;
        let not_before = now - Duration::minutes(1);
        let serial = random_serial();
        // No certificate outlives the CA that issues it.
        let (der, not_after) = match key {
            UserKey::P256(key) => {
                let not_after = (now + Duration::days(days)).min(self.pki.issuing_not_after());
                let der = self.pki.issue(&UserCertSpec {
                    kind: CertKind::Sign,
                    full_name: subscriber,
                    iin: None,
                    key,
                    serial,
                    not_before,
                    not_after,
                    crl_url: &self.settings.crl_url,
                });
                (der, not_after)
            }
            UserKey::Gost(profile, public) => {
                let ca = self.gost_ca(*profile).ok_or_else(|| {
                    BankError::Internal(format!(
                        "the bank has no {} CA; start it with --algorithm {}",
                        key.algorithm().describe(),
                        key.algorithm()
                    ))
                })?;
                let not_after = (now + Duration::days(days)).min(ca.not_after());
                let der = ca.issue(&GostCertSpec {
                    subject: Subject::Named(subscriber),
                    public,
                    serial: &serial,
                    not_before,
                    not_after,
                });
                (der, not_after)
            }
        };
        let der = der.map_err(BankError::Pki)?;
        let serial = hex::encode(serial);
        conn.execute(
            "INSERT INTO certificates(serial, profile, der, key, not_before, not_after, state) VALUES(?1,?2,?3,?4,?5,?6,?7)",
            params![serial, profile, der, key.bytes(), not_before.unix_timestamp(), not_after.unix_timestamp(), state],
        )?;
        Ok(serial)
    }

    fn check_key_free(
        conn: &Connection,
        key: &[u8],
        except_regeneration: Option<i64>,
    ) -> Result<()> {
        let certified: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM certificates WHERE key=?1)",
            [key],
            |r| r.get(0),
        )?;
        if certified {
            return Err(BankError::KeyInUse("certified by the bank".into()));
        }
        let requested: Option<i64> = conn
            .query_row(
                "SELECT id FROM regenerations WHERE csr_key=?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        match requested {
            Some(id) if Some(id) != except_regeneration => {
                Err(BankError::KeyInUse(format!("in regeneration request {id}")))
            }
            _ => Ok(()),
        }
    }

    /// Admin: a subscriber with a first certificate for a fresh token's key.
    pub fn create_subscriber(
        &self,
        subscriber: &str,
        csr_pem: &str,
        valid_days: Option<i64>,
    ) -> Result<Provisioned> {
        let subscriber = subscriber.trim();
        if subscriber.is_empty()
            || subscriber.chars().count() > 64
            || subscriber.chars().any(char::is_control)
        {
            return Err(BankError::InvalidInput(
                "the subscriber name must be 1-64 printable characters".into(),
            ));
        }
        let days = valid_days.unwrap_or(self.settings.validity_days);
        if !(-36_500..=36_500).contains(&days) || days == 0 {
            return Err(BankError::InvalidInput(
                "valid_days must be non-zero and within 100 years".into(),
            ));
        }
        let csr =
            parse_csr(csr_pem, "first", &[self.settings.algorithm]).map_err(BankError::Csr)?;
        if csr.cn != subscriber {
            return Err(BankError::SubjectMismatch {
                expected: subscriber.into(),
                found: csr.cn,
            });
        }
        let mut conn = self.db();
        Self::check_key_free(&conn, csr.key.bytes(), None)?;
        let identifier = key_identifier(csr.key.bytes());
        let tx = conn.transaction()?;
        match tx.execute(
            "INSERT INTO profiles(identifier, subscriber) VALUES(?1, ?2)",
            params![identifier, subscriber],
        ) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(BankError::Conflict(format!(
                    "subscriber {subscriber:?} already exists"
                )));
            }
            other => {
                other?;
            }
        }
        // A negative validity makes an already-expired certificate (for tests of refusal).
        let days_for_cert = days;
        self.issue(
            &tx,
            &identifier,
            subscriber,
            &csr.key,
            days_for_cert,
            "active",
        )?;
        tx.commit()?;
        drop(conn);
        Ok(Provisioned {
            profile: self.profile(&identifier)?,
            certificate: self.signature_params(&identifier)?.certificate,
            chain: self.chain(&csr.key),
        })
    }

    /// A profile as the customer sees it.
    pub fn profile(&self, identifier: &str) -> Result<Profile> {
        self.tick()?;
        let conn = self.db();
        self.profile_in(&conn, identifier)
    }

    fn profile_in(&self, conn: &Connection, identifier: &str) -> Result<Profile> {
        let subscriber: String = conn
            .query_row(
                "SELECT subscriber FROM profiles WHERE identifier=?1",
                [identifier],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| BankError::NotFound(format!("profile {identifier}")))?;
        let (serial, not_after): (String, i64) = conn.query_row(
            "SELECT serial, not_after FROM certificates WHERE profile=?1 AND state='active'",
            [identifier],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let now = Self::now_in(conn)?;
        let days_left = (not_after - now.unix_timestamp()).div_euclid(86_400);
        let latest: Option<String> = conn
            .query_row(
                "SELECT status FROM regenerations WHERE profile=?1 ORDER BY id DESC LIMIT 1",
                [identifier],
                |r| r.get(0),
            )
            .optional()?;
        let latest = latest.and_then(|s| Status::from_code(&s));
        let status = match latest {
            Some(s @ (Status::New | Status::AcceptedByBank | Status::NewCertificateReceived)) => s,
            Some(Status::Rejected) if days_left <= self.settings.warn_days => Status::Rejected,
            _ if days_left <= self.settings.warn_days => Status::RegenerationRequired,
            _ => Status::InOperation,
        };
        Ok(Profile {
            subscriber,
            identifier: identifier.to_owned(),
            cryptography: CRYPTOGRAPHY.to_owned(),
            status,
            serial,
            not_after: rfc3339(at(not_after)),
            days_left,
        })
    }

    /// Every profile (the operator's view).
    pub fn profiles(&self) -> Result<Vec<Profile>> {
        self.tick()?;
        let conn = self.db();
        let mut stmt = conn.prepare("SELECT identifier FROM profiles ORDER BY subscriber")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.iter().map(|id| self.profile_in(&conn, id)).collect()
    }

    /// A one-time challenge for a profile's login.
    pub fn challenge(&self, identifier: &str) -> Result<String> {
        let conn = self.db();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM profiles WHERE identifier=?1)",
            [identifier],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(BankError::NotFound(format!("profile {identifier}")));
        }
        let now = Self::now_in(&conn)?.unix_timestamp();
        conn.execute("DELETE FROM challenges WHERE expires < ?1", [now])?;
        let challenge = random_hex(32);
        conn.execute(
            "INSERT INTO challenges(challenge, profile, expires) VALUES(?1,?2,?3)",
            params![challenge, identifier, now + CHALLENGE_SECONDS as i64],
        )?;
        Ok(challenge)
    }

    /// Login: the challenge is this profile's and fresh, the certificate is the profile's
    /// active one and valid on the bank's clock, and the signature verifies with it. Any attempt
    /// spends the challenge, refused or not: a signature over it gets one try.
    pub fn login(&self, login: &Login) -> Result<Session> {
        let refused = BankError::LoginRefused;
        // A certificate that is not even PEM is a refused login (403), like any other wrong one.
        let der = pem_der(&login.certificate, "the certificate")
            .map_err(|e| refused(format!("{e}; send the profile's certificate, PEM")))?;
        let mut conn = self.db();
        let now = Self::now_in(&conn)?;
        let challenge: Option<(String, i64)> = conn
            .query_row(
                "DELETE FROM challenges WHERE challenge=?1 RETURNING profile, expires",
                [&login.challenge],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match challenge {
            None => {
                return Err(refused(
                    "unknown or already used challenge; ask for a new one".into(),
                ));
            }
            Some((profile, _)) if profile != login.profile => {
                return Err(refused(
                    "the challenge was issued for another profile".into(),
                ));
            }
            Some((_, expires)) if expires < now.unix_timestamp() => {
                return Err(refused("the challenge expired; ask for a new one".into()));
            }
            Some(_) => {}
        }
        let cert: Option<(String, String, i64, i64)> = conn
            .query_row("SELECT serial, state, not_before, not_after FROM certificates WHERE der=?1 AND profile=?2", params![der, login.profile], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let (serial, state, not_before, not_after) = cert.ok_or_else(|| {
            refused(
                "the certificate is not this profile's; use the certificate the bank issued for it"
                    .into(),
            )
        })?;
        match state.as_str() {
            "retired" => {
                return Err(refused(format!(
                    "certificate {serial} was retired by a regeneration; use the new key set"
                )));
            }
            "pending" => {
                return Err(refused(format!(
                    "certificate {serial} is not activated yet; finish the regeneration with \"Продолжить\""
                )));
            }
            _ => {}
        }
        let t = now.unix_timestamp();
        if t > not_after {
            return Err(refused(format!(
                "certificate {serial} expired on {}; an expired key set cannot be regenerated online — visit a branch",
                rfc3339(at(not_after))
            )));
        }
        if t < not_before {
            return Err(refused(format!("certificate {serial} is not valid yet")));
        }
        verify(
            &cert_key(&der)?,
            &login_message(&login.challenge),
            &login.signature,
            "profile's current key",
        )?;
        let tx = conn.transaction()?;
        let token = random_hex(32);
        tx.execute(
            "INSERT INTO sessions(token, profile, expires) VALUES(?1,?2,?3)",
            params![
                token,
                login.profile,
                t + self.settings.session_seconds as i64
            ],
        )?;
        tx.commit()?;
        drop(conn);
        let critical = [self.profile(&login.profile)?]
            .into_iter()
            .filter(|p| matches!(p.status, Status::RegenerationRequired | Status::Rejected))
            .collect();
        Ok(Session {
            token,
            expires_in: self.settings.session_seconds,
            critical,
        })
    }

    /// The profile behind a session.
    pub fn session(&self, token: &str) -> Result<String> {
        let conn = self.db();
        let now = Self::now_in(&conn)?.unix_timestamp();
        let row: Option<(String, i64)> = conn
            .query_row(
                "SELECT profile, expires FROM sessions WHERE token=?1",
                [token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Err(BankError::Unauthenticated(
                "unknown session; log in again".into(),
            )),
            Some((_, expires)) if expires < now => Err(BankError::Unauthenticated(
                "the session expired; log in again".into(),
            )),
            Some((profile, _)) => Ok(profile),
        }
    }

    /// "Параметры подписи" of the profile's active certificate.
    pub fn signature_params(&self, identifier: &str) -> Result<SignatureParams> {
        let conn = self.db();
        let der: Vec<u8> = conn
            .query_row(
                "SELECT der FROM certificates WHERE profile=?1 AND state='active'",
                [identifier],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| BankError::NotFound(format!("profile {identifier}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| BankError::Internal(e.to_string()))?;
        Ok(SignatureParams {
            serial: hex::encode(cert.raw_serial()),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: rfc3339(cert.validity().not_before.to_datetime()),
            not_after: rfc3339(cert.validity().not_after.to_datetime()),
            algorithm: UserKey::from_spki(cert.public_key().raw)
                .map_err(BankError::Internal)?
                .algorithm()
                .describe()
                .to_owned(),
            certificate: kilt_mock_server::pki::to_pem(&der),
        })
    }

    fn regeneration_in(conn: &Connection, id: i64, lang: Lang) -> Result<Regeneration> {
        let row: Option<(String, String, Option<String>, Option<String>)> = conn
            .query_row(
                "SELECT profile, status, reason, new_serial FROM regenerations WHERE id=?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (profile, status, reason, new_serial) =
            row.ok_or_else(|| BankError::NotFound(format!("regeneration {id}")))?;
        let status = Status::from_code(&status).unwrap_or(Status::New);
        Ok(Regeneration {
            id: id as u64,
            profile,
            status,
            reason,
            description: description(lang),
            new_serial,
            message: (status == Status::InOperation).then(|| switched_message(lang).to_owned()),
        })
    }

    /// A regeneration of `profile` (or any, for the operator: `None`).
    pub fn regeneration(&self, profile: Option<&str>, id: i64, lang: Lang) -> Result<Regeneration> {
        self.tick()?;
        let conn = self.db();
        let r = Self::regeneration_in(&conn, id, lang)?;
        if profile.is_some_and(|p| p != r.profile) {
            return Err(BankError::NotFound(format!("regeneration {id}")));
        }
        Ok(r)
    }

    /// Every regeneration, newest first (operator).
    pub fn regenerations(&self, lang: Lang) -> Result<Vec<Regeneration>> {
        self.tick()?;
        let conn = self.db();
        let mut stmt = conn.prepare("SELECT id FROM regenerations ORDER BY id DESC")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.into_iter()
            .map(|id| Self::regeneration_in(&conn, id, lang))
            .collect()
    }

    /// "Новый": starts a regeneration, or returns the open one (so a retried click makes
    /// no second request). The `bool` says whether it was created now.
    pub fn start(&self, profile: &str, lang: Lang) -> Result<(Regeneration, bool)> {
        self.tick()?;
        let conn = self.db();
        let open: Option<i64> = conn
            .query_row(
                "SELECT id FROM regenerations WHERE profile=?1 AND status IN ('new','accepted_by_bank','new_certificate_received')",
                [profile],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = open {
            return Ok((Self::regeneration_in(&conn, id, lang)?, false));
        }
        let now = Self::now_in(&conn)?.unix_timestamp();
        conn.execute(
            "INSERT INTO regenerations(profile, status, created) VALUES(?1,'new',?2)",
            params![profile, now],
        )?;
        Ok((
            Self::regeneration_in(&conn, conn.last_insert_rowid(), lang)?,
            true,
        ))
    }

    fn owned(conn: &Connection, profile: &str, id: i64) -> Result<(Status, Option<Vec<u8>>)> {
        let row: Option<(String, String, Option<Vec<u8>>)> = conn
            .query_row(
                "SELECT profile, status, csr FROM regenerations WHERE id=?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            Some((owner, status, csr)) if owner == profile => {
                Ok((Status::from_code(&status).unwrap_or(Status::New), csr))
            }
            _ => Err(BankError::NotFound(format!("regeneration {id}"))),
        }
    }

    /// "Отправить документ в банк" + "Подписать": the new key's CSR, signed by the old key.
    /// Sending the same CSR again returns the same answer and changes nothing.
    pub fn submit(
        &self,
        profile: &str,
        id: i64,
        submit: &Submit,
        lang: Lang,
    ) -> Result<Regeneration> {
        let mut conn = self.db();
        let (status, stored) = Self::owned(&conn, profile, id)?;
        let (subscriber, old_der): (String, Vec<u8>) = conn.query_row(
            "SELECT p.subscriber, c.der FROM profiles p JOIN certificates c ON c.profile=p.identifier AND c.state='active' WHERE p.identifier=?1",
            [profile],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // The new key set keeps the profile's algorithm (seed 000 regenerates, it does not
        // migrate); a retry after activation still names the same algorithm.
        let old_key = cert_key(&old_der)?;
        let csr =
            parse_csr(&submit.csr, "new key", &[old_key.algorithm()]).map_err(BankError::Csr)?;
        if stored.as_deref() == Some(csr.der.as_slice()) {
            drop(conn);
            return self.regeneration(Some(profile), id, lang); // a retry of the same submission
        }
        if status != Status::New {
            return Err(BankError::Conflict(format!(
                "regeneration {id} is already \"{}\"; start a new one to send another request",
                status.label(lang)
            )));
        }
        if csr.cn != subscriber {
            return Err(BankError::SubjectMismatch {
                expected: subscriber,
                found: csr.cn,
            });
        }
        Self::check_key_free(&conn, csr.key.bytes(), Some(id))?;
        verify(
            &old_key,
            &csr.der,
            &submit.signature,
            "profile's current (old) key",
        )?;
        let now = Self::now_in(&conn)?.unix_timestamp();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE regenerations SET status='accepted_by_bank', csr=?2, csr_key=?3, accepted_at=?4 WHERE id=?1",
            params![id, csr.der, csr.key.bytes(), now],
        )?;
        tx.commit()?;
        // Answered as accepted: processing happens on the bank's side, seen by polling.
        Self::regeneration_in(&conn, id, lang)
    }

    fn process(&self, conn: &mut Connection, id: i64) -> Result<()> {
        let (profile, csr): (String, Vec<u8>) = conn.query_row(
            "SELECT profile, csr FROM regenerations WHERE id=?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let subscriber: String = conn.query_row(
            "SELECT subscriber FROM profiles WHERE identifier=?1",
            [&profile],
            |r| r.get(0),
        )?;
        let parsed = parse_csr(
            &kilt_mock_server::pki::pem_of("CERTIFICATE REQUEST", &csr),
            "new key",
            &Algorithm::ALL,
        )
        .map_err(BankError::Csr)?;
        let tx = conn.transaction()?;
        let serial = self.issue(
            &tx,
            &profile,
            &subscriber,
            &parsed.key,
            self.settings.validity_days,
            "pending",
        )?;
        tx.execute(
            "UPDATE regenerations SET status='new_certificate_received', new_serial=?2 WHERE id=?1",
            params![id, serial],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Time-driven processing: accepted requests older than the delay get their certificate.
    pub fn tick(&self) -> Result<()> {
        if self.approval.get().manual {
            return Ok(());
        }
        let mut conn = self.db();
        let due = Self::now_in(&conn)?.unix_timestamp() - self.settings.processing_seconds as i64;
        let mut stmt = conn.prepare(
            "SELECT id FROM regenerations WHERE status='accepted_by_bank' AND accepted_at <= ?1",
        )?;
        let ids = stmt
            .query_map([due], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        for id in ids {
            self.process(&mut conn, id)?;
        }
        Ok(())
    }

    /// The operator approves an accepted request: the certificate is issued now.
    pub fn approve(&self, id: i64, lang: Lang) -> Result<Regeneration> {
        let mut conn = self.db();
        let status = Self::regeneration_in(&conn, id, lang)?.status;
        if status != Status::AcceptedByBank {
            return Err(BankError::Conflict(format!(
                "regeneration {id} is \"{}\"; only accepted requests can be approved",
                status.label(lang)
            )));
        }
        self.process(&mut conn, id)?;
        Self::regeneration_in(&conn, id, lang)
    }

    /// The operator rejects a request still with the bank.
    pub fn reject(&self, id: i64, reason: &str, lang: Lang) -> Result<Regeneration> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(BankError::InvalidInput(
                "a rejection needs a reason of 1-500 characters".into(),
            ));
        }
        self.tick()?;
        let conn = self.db();
        let status = Self::regeneration_in(&conn, id, lang)?.status;
        if !status.may_become(Status::Rejected) || status == Status::Rejected {
            return Err(BankError::Conflict(format!(
                "regeneration {id} is \"{}\"; it can no longer be rejected",
                status.label(lang)
            )));
        }
        // The key stays recorded so the same request cannot come back under another number.
        conn.execute(
            "UPDATE regenerations SET status='rejected', reason=?2 WHERE id=?1",
            params![id, reason],
        )?;
        Self::regeneration_in(&conn, id, lang)
    }

    /// "Получить сертификат (ключ)".
    pub fn certificate(&self, profile: &str, id: i64) -> Result<IssuedCertificate> {
        self.tick()?;
        let conn = self.db();
        let (status, _) = Self::owned(&conn, profile, id)?;
        if !matches!(status, Status::NewCertificateReceived | Status::InOperation) {
            return Err(BankError::Conflict(format!(
                "regeneration {id} is \"{}\"; the certificate is ready at \"{}\"",
                status.label(Lang::Ru),
                Status::NewCertificateReceived.label(Lang::Ru)
            )));
        }
        let der: Vec<u8> = conn.query_row(
            "SELECT c.der FROM certificates c JOIN regenerations r ON r.new_serial=c.serial WHERE r.id=?1",
            [id],
            |r| r.get(0),
        )?;
        let key = cert_key(&der)?;
        Ok(IssuedCertificate {
            certificate: kilt_mock_server::pki::to_pem(&der),
            chain: self.chain(&key),
        })
    }

    /// "Продолжить": proved by the **new** key; the old certificate is retired and the new one
    /// becomes the profile's only active one, in one transaction. Repeating it is harmless.
    pub fn activate(
        &self,
        profile: &str,
        id: i64,
        signature: &str,
        lang: Lang,
    ) -> Result<Regeneration> {
        self.tick()?;
        let mut conn = self.db();
        let (status, _) = Self::owned(&conn, profile, id)?;
        if status == Status::InOperation {
            return Self::regeneration_in(&conn, id, lang);
        }
        if status != Status::NewCertificateReceived {
            return Err(BankError::Conflict(format!(
                "regeneration {id} is \"{}\"; activate once it is \"{}\"",
                status.label(lang),
                Status::NewCertificateReceived.label(lang)
            )));
        }
        let (serial, der): (String, Vec<u8>) = conn.query_row(
            "SELECT c.serial, c.der FROM certificates c JOIN regenerations r ON r.new_serial=c.serial WHERE r.id=?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        verify(
            &cert_key(&der)?,
            &activation_message(id as u64, &serial),
            signature,
            "new key",
        )?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE certificates SET state='retired' WHERE profile=?1 AND state='active'",
            [profile],
        )?;
        tx.execute(
            "UPDATE certificates SET state='active' WHERE serial=?1",
            [&serial],
        )?;
        tx.execute(
            "UPDATE regenerations SET status='in_operation' WHERE id=?1",
            [id],
        )?;
        tx.commit()?;
        Self::regeneration_in(&conn, id, lang)
    }

    /// Everything, for "changes nothing" checks.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let regenerations = {
            let conn = self.db();
            let mut stmt = conn.prepare("SELECT id FROM regenerations ORDER BY id")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.into_iter()
                .map(|id| Self::regeneration_in(&conn, id, Lang::En))
                .collect::<Result<Vec<_>>>()?
        };
        let conn = self.db();
        let mut stmt =
            conn.prepare("SELECT identifier, subscriber FROM profiles ORDER BY identifier")?;
        let profiles = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt =
            conn.prepare("SELECT serial, profile, state FROM certificates ORDER BY serial")?;
        let certificates = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Snapshot {
            profiles,
            certificates,
            regenerations,
        })
    }
}

/// Where the bank keeps its state by default: `KILT_BANK_DIR`, else `$XDG_DATA_HOME/kilt/bank`.
pub fn default_data_dir() -> PathBuf {
    kilt_mock_server::data_dir("KILT_BANK_DIR", "bank")
}
