//! The CA's state and rules, without HTTP: accounts, sessions, requests, certificates, the
//! clock and the CRL. The web layer is a thin shell over [`Ca`], so tests and the proptest
//! model drive exactly what the server does.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use kilt_protocol::ca::{
    CertKind, CertStatus, Certificate, Clock, CsrItem, Device, IssueRequest, NewUser, Provision,
    Request, RequestStatus, Session, User,
};
use rcgen::RevocationReason;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::error::{CaError, Result};
use crate::pki::{
    Algorithm, P256PublicKey, Pki, PkiNames, Revoked, UserCertSpec, UserKey, random_serial,
};

/// Default certificate validity ("1-year validity by default").
pub const DEFAULT_VALIDITY_DAYS: i64 = 365;
/// Default session lifetime.
pub const DEFAULT_SESSION_SECONDS: u64 = 30 * 60;
/// PBKDF2 rounds for account passwords.
const PASSWORD_ROUNDS: u32 = 100_000;

/// The CA's settings that shape issuing.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Validity of issued certificates, days.
    pub validity_days: i64,
    /// Approve and issue at once ("auto-approval by default"), or wait for the admin.
    pub auto_approve: bool,
    /// The URL written as the CRL distribution point.
    pub crl_url: String,
    /// Session lifetime, seconds.
    pub session_seconds: u64,
    /// TrueType font with Cyrillic glyphs for the application PDF.
    pub font: PathBuf,
    /// How long a login waits after [`PASSWORD_TRIES`] wrong passwords in a row.
    pub password_lock: std::time::Duration,
}

/// Wrong passwords a login may give in a row before it has to wait `password_lock` (a short
/// lockout, as OWASP's authentication guidance suggests: it stops guessing without letting
/// anyone lock a customer out for long).
pub const PASSWORD_TRIES: u32 = 5;
/// The default of [`Settings::password_lock`].
pub const DEFAULT_PASSWORD_LOCK: std::time::Duration = std::time::Duration::from_secs(60);

/// Wrong passwords per login since its last success, and until when it waits.
#[derive(Debug, Default)]
struct Throttle(
    std::sync::Mutex<std::collections::HashMap<String, (u32, Option<std::time::Instant>)>>,
);

impl Throttle {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (u32, Option<std::time::Instant>)>,
    > {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses while `login` waits: even the right password, so guessing gains nothing.
    fn check(&self, login: &str) -> Result<()> {
        let now = std::time::Instant::now();
        match self.map().get(login) {
            Some((_, Some(until))) if *until > now => Err(CaError::TooManyAttempts {
                retry_after: (*until - now).as_secs() + 1,
            }),
            _ => Ok(()),
        }
    }

    fn failed(&self, login: &str, lock: std::time::Duration) {
        let mut map = self.map();
        let entry = map.entry(login.to_owned()).or_default();
        entry.0 += 1;
        if entry.0 >= PASSWORD_TRIES {
            *entry = (0, Some(std::time::Instant::now() + lock));
        }
    }

    fn succeeded(&self, login: &str) {
        self.map().remove(login);
    }
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Public view.
    pub user: User,
}

/// Everything the CA holds, for tests that check "bad input changes nothing".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Logins.
    pub users: Vec<String>,
    /// Every request.
    pub requests: Vec<Request>,
    /// Every certificate serial with its revocation state.
    pub certificates: Vec<(String, bool)>,
}

/// The CA.
pub struct Ca {
    /// The approval mode now; `settings.auto_approve` is only where it starts (`/admin/approval`).
    approval: crate::server::ApprovalSwitch,
    db: crate::db::Db,
    pki: Pki,
    settings: Settings,
    throttle: Throttle,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE, salt BLOB NOT NULL, hash BLOB NOT NULL,
    full_name TEXT NOT NULL, iin TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
    token TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests(
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), device TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS request_events(
    request_id INTEGER NOT NULL REFERENCES requests(id), status TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS request_csrs(
    request_id INTEGER NOT NULL REFERENCES requests(id), kind TEXT NOT NULL, csr BLOB NOT NULL,
    PRIMARY KEY(request_id, kind));
CREATE TABLE IF NOT EXISTS certificates(
    serial TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), kind TEXT NOT NULL,
    request_id INTEGER, der BLOB NOT NULL, key BLOB NOT NULL UNIQUE,
    not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
    revoked_at INTEGER, revoke_reason INTEGER);
";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn kind_of(code: &str) -> CertKind {
    if code == "sign" {
        CertKind::Sign
    } else {
        CertKind::Auth
    }
}

fn device_of(name: &str) -> Device {
    Device::ALL
        .into_iter()
        .find(|d| d.name() == name)
        .unwrap_or(Device::JaCarta)
}

/// Parses an RFC 5280 §5.3.1 reason name as the API takes it.
pub fn parse_reason(name: &str) -> Result<RevocationReason> {
    Ok(match name {
        "unspecified" => RevocationReason::Unspecified,
        "key_compromise" => RevocationReason::KeyCompromise,
        "affiliation_changed" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessation_of_operation" => RevocationReason::CessationOfOperation,
        "privilege_withdrawn" => RevocationReason::PrivilegeWithdrawn,
        other => {
            return Err(CaError::InvalidInput(format!(
                "unknown revocation reason {other:?}; use superseded, key_compromise, \
                 affiliation_changed, cessation_of_operation, privilege_withdrawn or unspecified"
            )));
        }
    })
}

fn reason_from_code(code: i64) -> RevocationReason {
    match code {
        1 => RevocationReason::KeyCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        9 => RevocationReason::PrivilegeWithdrawn,
        _ => RevocationReason::Unspecified,
    }
}

/// A CSR that passed every check, ready to be stored or issued.
#[derive(Debug)]
struct CheckedCsr {
    kind: CertKind,
    der: Vec<u8>,
    key: P256PublicKey,
}

/// Checks one CSR: PEM, PKCS#10 structure, P-256 key, self-signature (RFC 2986 §3: the
/// signature proves possession of the key), and that the subject names `account`.
fn check_csr(item: &CsrItem, account: &User) -> Result<CheckedCsr> {
    let kind = item.kind.code();
    let csr = crate::pki::parse_csr(&item.csr, kind, &[Algorithm::P256])?;
    let want_iin = format!("IIN{}", account.iin);
    if csr.cn != account.full_name || csr.serial_number != want_iin {
        return Err(CaError::SubjectMismatch {
            kind,
            expected: format!("CN={}, SERIALNUMBER={want_iin}", account.full_name),
            found: format!("CN={}, SERIALNUMBER={}", csr.cn, csr.serial_number),
        });
    }
    // Only P-256 was accepted above; the match keeps the type honest without a panic.
    let UserKey::P256(key) = csr.key else {
        return Err(CaError::InvalidInput(format!(
            "the {kind} CSR is not P-256"
        )));
    };
    Ok(CheckedCsr {
        kind: item.kind,
        key,
        der: csr.der,
    })
}

/// One CSR per kind, at least one, each kind once.
fn check_kinds(csrs: &[CsrItem]) -> Result<()> {
    if csrs.is_empty() {
        return Err(CaError::InvalidInput(
            "the request carries no CSR; send one per certificate (auth, sign)".into(),
        ));
    }
    for (i, a) in csrs.iter().enumerate() {
        if csrs[..i].iter().any(|b| b.kind == a.kind) {
            return Err(CaError::InvalidInput(format!(
                "the request carries two {} CSRs; send one per certificate kind",
                a.kind.code()
            )));
        }
    }
    Ok(())
}

fn validate_new_user(user: &NewUser) -> Result<()> {
    let login_ok = !user.login.is_empty()
        && user.login.len() <= 64
        && user
            .login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !login_ok {
        return Err(CaError::InvalidInput(
            "login must be 1-64 of A-Z a-z 0-9 . _ -".into(),
        ));
    }
    if user.password.chars().count() < 8 {
        return Err(CaError::InvalidInput(
            "password must be at least 8 characters".into(),
        ));
    }
    if user.iin.len() != 12 || !user.iin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CaError::InvalidInput(
            "IIN must be exactly 12 digits".into(),
        ));
    }
    let name = user.full_name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(CaError::InvalidInput(
            "full name must be 1-64 printable characters".into(),
        ));
    }
    Ok(())
}

fn hash_password(salt: &[u8], password: &str) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let rounds = NonZeroU32::new(PASSWORD_ROUNDS).expect("non-zero");
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG works");
    hex::encode(bytes)
}

fn sha256_hex(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

pub use kilt_mock_server::pki::{pem_of, to_pem};

/// Why a login certificate from elsewhere is refused.
const NOT_OURS: &str =
    "the certificate was not issued by this CA; choose the certificate this CA issued you";

impl Ca {
    /// Opens (or creates) the CA in `dir`: `ca.sqlite` plus the PKI files.
    pub fn open(dir: &Path, settings: Settings) -> Result<Ca> {
        std::fs::create_dir_all(dir).map_err(|e| CaError::io(dir, e))?;
        let db = crate::db::Db::open(&dir.join("ca.sqlite"), SCHEMA)?;
        crate::db::repair_clock(&db.lock())?;
        let now = crate::db::clock_now(&db.lock())?;
        let pki = Pki::load_or_create(dir, now, PkiNames::CA)?;
        Ok(Ca {
            approval: crate::server::ApprovalSwitch::new(!settings.auto_approve),
            db,
            pki,
            settings,
            throttle: Throttle::default(),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock()
    }

    /// The PKI (root, issuing CA, TLS identity).
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// Whether new requests wait for the operator, switchable at run time.
    pub fn approval(&self) -> &crate::server::ApprovalSwitch {
        &self.approval
    }

    /// The settings this CA runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn offset(conn: &Connection) -> Result<i64> {
        Ok(crate::db::clock_offset(conn)?)
    }

    fn now_in(conn: &Connection) -> Result<OffsetDateTime> {
        Ok(crate::db::clock_now(conn)?)
    }

    /// The CA's now: the system clock plus the admin's shift.
    pub fn now(&self) -> Result<OffsetDateTime> {
        Self::now_in(&self.db())
    }

    /// The CA's clock.
    pub fn clock(&self) -> Result<Clock> {
        Ok(crate::db::clock_at(Self::offset(&self.db())?))
    }

    /// Moves the CA's clock by `days` (to make certificates expire without waiting).
    pub fn shift_clock(&self, days: i64) -> Result<Clock> {
        let offset = crate::db::shift_clock(&self.db(), days)?.map_err(|r| match r {
            crate::db::ClockRefusal::TooFar(why) => CaError::InvalidInput(why),
            crate::db::ClockRefusal::OutOfRange(why) => CaError::Conflict(why),
        })?;
        Ok(crate::db::clock_at(offset))
    }

    /// Creates an account.
    pub fn create_user(&self, new: &NewUser) -> Result<User> {
        validate_new_user(new)?;
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).expect("the system RNG works");
        let hash = hash_password(&salt, &new.password);
        let user = User {
            login: new.login.clone(),
            full_name: new.full_name.trim().to_owned(),
            iin: new.iin.clone(),
        };
        let conn = self.db();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        match conn.execute(
            "INSERT INTO users(login, salt, hash, full_name, iin, created) VALUES(?1,?2,?3,?4,?5,?6)",
            params![user.login, salt.to_vec(), hash, user.full_name, user.iin, now],
        ) {
            Ok(_) => Ok(user),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(CaError::Conflict(format!("user {:?} already exists", new.login)))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn account_where(
        conn: &Connection,
        clause: &str,
        arg: &dyn rusqlite::ToSql,
    ) -> Result<Option<Account>> {
        Ok(conn
            .query_row(
                &format!("SELECT id, login, full_name, iin FROM users WHERE {clause}"),
                [arg],
                |r| {
                    Ok(Account {
                        id: r.get(0)?,
                        user: User {
                            login: r.get(1)?,
                            full_name: r.get(2)?,
                            iin: r.get(3)?,
                        },
                    })
                },
            )
            .optional()?)
    }

    /// The account with this login.
    pub fn account(&self, login: &str) -> Result<Account> {
        Self::account_where(&self.db(), "login=?1", &login)?
            .ok_or_else(|| CaError::NotFound(format!("user {login:?}")))
    }

    fn open_session(&self, conn: &Connection, account: Account) -> Result<Session> {
        let token = random_hex(32);
        let now = Self::now_in(conn)?;
        let expires = now.unix_timestamp() + self.settings.session_seconds as i64;
        conn.execute(
            "DELETE FROM sessions WHERE expires < ?1",
            [now.unix_timestamp()],
        )?;
        conn.execute(
            "INSERT INTO sessions(token, user_id, expires) VALUES(?1,?2,?3)",
            params![token, account.id, expires],
        )?;
        Ok(Session {
            token,
            user: account.user,
            expires_in: self.settings.session_seconds,
        })
    }

    /// "Логин" + "Пароль".
    pub fn login_password(&self, login: &str, password: &str) -> Result<Session> {
        self.throttle.check(login)?;
        let conn = self.db();
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = conn
            .query_row(
                "SELECT id, salt, hash FROM users WHERE login=?1",
                [login],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        // An unknown login costs the same PBKDF2 as a known one, so timing tells nothing.
        let (salt, hash) = row
            .as_ref()
            .map(|(_, s, h)| (s.clone(), h.clone()))
            .unwrap_or((vec![0; 16], vec![]));
        let ok = aws_lc_rs::pbkdf2::verify(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(PASSWORD_ROUNDS).expect("non-zero"),
            &salt,
            password.as_bytes(),
            &hash,
        )
        .is_ok();
        match row {
            Some((id, ..)) if ok => {
                self.throttle.succeeded(login);
                let account =
                    Self::account_where(&conn, "id=?1", &id)?.ok_or(CaError::BadPassword)?;
                self.open_session(&conn, account)
            }
            _ => {
                self.throttle.failed(login, self.settings.password_lock);
                Err(CaError::BadPassword)
            }
        }
    }

    /// "По сертификату": the TLS client certificate (its possession was proved by the TLS
    /// handshake) must chain to the root on the CA's clock, be an AUTH certificate (EKU
    /// clientAuth, RFC 5280 §4.2.1.12), be known and not revoked.
    pub fn login_certificate(&self, chain: &[Vec<u8>]) -> Result<Session> {
        let refused = CaError::CertificateRefused;
        let leaf = chain.first().ok_or_else(|| {
            refused("the TLS connection carries no client certificate; choose your AUTH certificate when the browser or client asks".into())
        })?;
        // The register first: a certificate this CA never issued (the bank's, a self-signed one)
        // is "not issued by this CA", whatever else is wrong with it for a login here.
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| refused(format!("the client certificate does not parse ({e})")))?;
        let serial = hex::encode(cert.raw_serial());
        let row: Option<(i64, Option<i64>)> = self
            .db()
            .query_row(
                "SELECT user_id, revoked_at FROM certificates WHERE serial=?1",
                [&serial],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((user_id, revoked_at)) = row else {
            return Err(refused(NOT_OURS.into()));
        };
        let now = self.now()?;
        let root = CertificateDer::from(self.pki.root_der());
        let anchor = webpki::anchor_from_trusted_cert(&root)
            .map_err(|e| CaError::tls(format!("root: {e:?}")))?;
        let intermediates = [CertificateDer::from(self.pki.issuing_der())];
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let ee = webpki::EndEntityCert::try_from(&leaf_der)
            .map_err(|e| refused(format!("the client certificate does not parse ({e:?})")))?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.unix_timestamp().max(0) as u64,
        ));
        if let Err(e) = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &intermediates,
            time,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        ) {
            let why = match e {
                webpki::Error::CertExpired { .. } => format!(
                    "the certificate expired (the CA's time is {}); request a new one by login and password or at a branch",
                    rfc3339(now)
                ),
                webpki::Error::CertNotValidYet { .. } => "the certificate is not valid yet".into(),
                // Another CA with the same names and serial fails on the signature.
                webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
                    NOT_OURS.into()
                }
                webpki::Error::RequiredEkuNotFoundContext(_) => {
                    "this is not an authentication certificate; choose the AUTH certificate (the upper one)".into()
                }
                _ => "this certificate cannot be used to log in; choose the AUTH certificate this CA issued you".into(),
            };
            return Err(refused(why));
        }
        if let Some(when) = revoked_at {
            return Err(refused(format!(
                "certificate {serial} was revoked on {}; log in with your current certificate or by password",
                rfc3339(at(when))
            )));
        }
        let conn = self.db();
        let account = Self::account_where(&conn, "id=?1", &user_id)?
            .ok_or_else(|| CaError::NotFound("the certificate's user".into()))?;
        self.open_session(&conn, account)
    }

    /// The account behind a session token.
    pub fn session(&self, token: &str) -> Result<Account> {
        let conn = self.db();
        let now = Self::now_in(&conn)?.unix_timestamp();
        let row: Option<(i64, i64)> = conn
            .query_row(
                "SELECT user_id, expires FROM sessions WHERE token=?1",
                [token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Err(CaError::Unauthenticated(
                "unknown session; log in again".into(),
            )),
            Some((_, expires)) if expires < now => Err(CaError::Unauthenticated(
                "the session expired; log in again".into(),
            )),
            Some((user_id, _)) => Self::account_where(&conn, "id=?1", &user_id)?
                .ok_or_else(|| CaError::Unauthenticated("the session's user is gone".into())),
        }
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM sessions WHERE token=?1", [token])?;
        Ok(())
    }

    fn key_in_use(tx: &Connection, csr: &CheckedCsr) -> Result<()> {
        let serial: Option<String> = tx
            .query_row(
                "SELECT serial FROM certificates WHERE key=?1",
                [&csr.key.0],
                |r| r.get(0),
            )
            .optional()?;
        match serial {
            Some(serial) => Err(CaError::KeyInUse {
                kind: csr.kind.code(),
                serial,
            }),
            None => Ok(()),
        }
    }

    fn check_all(
        &self,
        tx: &Connection,
        account: &Account,
        csrs: &[CsrItem],
    ) -> Result<Vec<CheckedCsr>> {
        check_kinds(csrs)?;
        let checked = csrs
            .iter()
            .map(|item| check_csr(item, &account.user))
            .collect::<Result<Vec<_>>>()?;
        if checked.len() == 2 && checked[0].key.0 == checked[1].key.0 {
            return Err(CaError::InvalidInput(
                "the auth and sign CSRs carry the same key; use one key pair per certificate"
                    .into(),
            ));
        }
        let pending = Self::pending_keys(tx)?;
        for csr in &checked {
            Self::key_in_use(tx, csr)?;
            if let Some((request, _)) = pending.iter().find(|(_, k)| *k == csr.key.0) {
                return Err(CaError::KeyPending {
                    kind: csr.kind.code(),
                    request: *request,
                });
            }
        }
        Ok(checked)
    }

    /// The keys of the CSRs of request `id` (uncompressed points), as received.
    fn request_keys(conn: &Connection, id: i64) -> Result<Vec<Vec<u8>>> {
        let mut stmt =
            conn.prepare("SELECT csr FROM request_csrs WHERE request_id=?1 ORDER BY kind")?;
        let ders = stmt
            .query_map([id], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ders
            .iter()
            .filter_map(|der| {
                crate::pki::parse_csr(
                    &pem_of("CERTIFICATE REQUEST", der),
                    "stored",
                    &[Algorithm::P256],
                )
                .ok()
                .map(|c| c.key.bytes().to_vec())
            })
            .collect())
    }

    /// Every key waiting in a `new` request, with the request.
    fn pending_keys(conn: &Connection) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut stmt = conn.prepare("SELECT id FROM requests WHERE status='new'")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = vec![];
        for id in ids {
            for key in Self::request_keys(conn, id)? {
                out.push((id, key));
            }
        }
        Ok(out)
    }

    fn issue_into(
        &self,
        tx: &Transaction<'_>,
        account: &Account,
        request_id: Option<i64>,
        csr: &CheckedCsr,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<String> {
        let ca_end = self.pki.issuing_not_after();
        let now = Self::now_in(tx)?;
        if now >= ca_end {
            return Err(CaError::CaExpired(rfc3339(ca_end)));
        }
        // RFC 5280 §6.1.3: a certificate past its issuer's validity fails path validation, so
        // never issue one.
        let not_after = not_after.min(ca_end);
        loop {
            let serial = random_serial();
            let hex_serial = hex::encode(serial);
            let taken: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM certificates WHERE serial=?1)",
                [&hex_serial],
                |r| r.get(0),
            )?;
            if taken {
                continue; // 2^-127 odds, but a serial is never reused
            }
            let der = self.pki.issue(&UserCertSpec {
                kind: csr.kind,
                full_name: &account.user.full_name,
                iin: Some(&account.user.iin),
                key: &csr.key,
                serial,
                not_before,
                not_after,
                crl_url: &self.settings.crl_url,
            })?;
            tx.execute(
                "INSERT INTO certificates(serial, user_id, kind, request_id, der, key, not_before, not_after)
                 VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                params![hex_serial, account.id, csr.kind.code(), request_id, der, csr.key.0, not_before.unix_timestamp(), not_after.unix_timestamp()],
            )?;
            return Ok(hex_serial);
        }
    }

    /// Issues a user's first certificates with no login (admin provisioning of a fresh token).
    pub fn provision(&self, login: &str, p: &Provision) -> Result<Vec<Certificate>> {
        let mut conn = self.db();
        let account = Self::account_where(&conn, "login=?1", &login)?
            .ok_or_else(|| CaError::NotFound(format!("user {login:?}")))?;
        let checked = self.check_all(&conn, &account, &p.csrs)?;
        let valid = p.valid_days.unwrap_or(self.settings.validity_days);
        let back = p.backdate_days.unwrap_or(0);
        if !(-36_500..=36_500).contains(&valid) || !(0..=36_500).contains(&back) {
            return Err(CaError::InvalidInput(
                "valid_days and backdate_days must be within 100 years".into(),
            ));
        }
        let now = Self::now_in(&conn)?;
        let not_before = now - Duration::days(back) - Duration::minutes(1);
        let not_after = now + Duration::days(valid);
        if not_after <= not_before {
            return Err(CaError::InvalidInput(
                "the certificate would end before it starts; raise valid_days".into(),
            ));
        }
        let tx = conn.transaction()?;
        let serials = checked
            .iter()
            .map(|csr| self.issue_into(&tx, &account, None, csr, not_before, not_after))
            .collect::<Result<Vec<_>>>()?;
        let certs = serials
            .iter()
            .map(|s| Self::certificate_row(&tx, s, now))
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(certs)
    }

    fn event(tx: &Connection, id: i64, status: RequestStatus, now: i64) -> Result<()> {
        tx.execute(
            "UPDATE requests SET status=?2 WHERE id=?1",
            params![id, status.code()],
        )?;
        tx.execute(
            "INSERT INTO request_events(request_id, status, at) VALUES(?1,?2,?3)",
            params![id, status.code(), now],
        )?;
        Ok(())
    }

    /// "Запрос на выпуск сертификата": checks every CSR, stores the request, and with
    /// auto-approval issues at once. All or nothing: a bad CSR stores nothing.
    pub fn submit(&self, account: &Account, req: &IssueRequest) -> Result<Request> {
        let mut conn = self.db();
        let checked = self.check_all(&conn, account, &req.csrs)?;
        let now = Self::now_in(&conn)?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO requests(user_id, device, status, created) VALUES(?1,?2,'new',?3)",
            params![account.id, req.device.name(), now.unix_timestamp()],
        )?;
        let id = tx.last_insert_rowid();
        Self::event(&tx, id, RequestStatus::New, now.unix_timestamp())?;
        for csr in &checked {
            tx.execute(
                "INSERT INTO request_csrs(request_id, kind, csr) VALUES(?1,?2,?3)",
                params![id, csr.kind.code(), csr.der],
            )?;
        }
        if !self.approval.get().manual {
            self.approve_in(&tx, account, id, checked, now)?;
        }
        let request = self.request_row(&tx, id, now)?;
        tx.commit()?;
        Ok(request)
    }

    fn approve_in(
        &self,
        tx: &Transaction<'_>,
        account: &Account,
        id: i64,
        csrs: Vec<CheckedCsr>,
        now: OffsetDateTime,
    ) -> Result<()> {
        Self::event(tx, id, RequestStatus::Approved, now.unix_timestamp())?;
        let not_before = now - Duration::minutes(1);
        let not_after = now + Duration::days(self.settings.validity_days);
        for csr in &csrs {
            self.issue_into(tx, account, Some(id), csr, not_before, not_after)?;
        }
        Self::event(tx, id, RequestStatus::Issued, now.unix_timestamp())
    }

    /// The admin approves a `new` request; its certificates are issued.
    pub fn approve(&self, id: i64) -> Result<Request> {
        let mut conn = self.db();
        let (user_id, status) = Self::request_state(&conn, id)?;
        if status != RequestStatus::New {
            return Err(CaError::Conflict(format!(
                "request {id} is {}; only new requests can be approved",
                status.code()
            )));
        }
        let account = Self::account_where(&conn, "id=?1", &user_id)?
            .ok_or_else(|| CaError::NotFound("the request's user".into()))?;
        let now = Self::now_in(&conn)?;
        // The CSRs were checked on receipt; a key certified since then is refused now.
        let mut stmt =
            conn.prepare("SELECT kind, csr FROM request_csrs WHERE request_id=?1 ORDER BY kind")?;
        let stored = stmt
            .query_map([id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        let mut csrs = Vec::new();
        for (kind, der) in stored {
            let item = CsrItem {
                kind: kind_of(&kind),
                csr: pem_of("CERTIFICATE REQUEST", &der),
            };
            let csr = check_csr(&item, &account.user)?;
            Self::key_in_use(&conn, &csr)?;
            csrs.push(csr);
        }
        let tx = conn.transaction()?;
        self.approve_in(&tx, &account, id, csrs, now)?;
        let request = self.request_row(&tx, id, now)?;
        tx.commit()?;
        Ok(request)
    }

    /// The admin rejects a `new` request with a reason shown to the user.
    pub fn reject(&self, id: i64, reason: &str) -> Result<Request> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(CaError::InvalidInput(
                "a rejection needs a reason of 1-500 characters".into(),
            ));
        }
        let mut conn = self.db();
        let (_, status) = Self::request_state(&conn, id)?;
        if status != RequestStatus::New {
            return Err(CaError::Conflict(format!(
                "request {id} is {}; only new requests can be rejected",
                status.code()
            )));
        }
        let now = Self::now_in(&conn)?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE requests SET reason=?2 WHERE id=?1",
            params![id, reason],
        )?;
        Self::event(&tx, id, RequestStatus::Rejected, now.unix_timestamp())?;
        let request = self.request_row(&tx, id, now)?;
        tx.commit()?;
        Ok(request)
    }

    fn request_state(conn: &Connection, id: i64) -> Result<(i64, RequestStatus)> {
        let row: Option<(i64, String)> = conn
            .query_row(
                "SELECT user_id, status FROM requests WHERE id=?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (user, status) = row.ok_or_else(|| CaError::NotFound(format!("request {id}")))?;
        Ok((
            user,
            RequestStatus::from_code(&status).unwrap_or(RequestStatus::New),
        ))
    }

    fn certificate_row(
        conn: &Connection,
        serial: &str,
        now: OffsetDateTime,
    ) -> Result<Certificate> {
        Ok(conn.query_row(
            "SELECT serial, kind, der, not_before, not_after, revoked_at FROM certificates WHERE serial=?1",
            [serial],
            |r| Self::map_cert(r, now),
        )?)
    }

    fn map_cert(r: &rusqlite::Row<'_>, now: OffsetDateTime) -> rusqlite::Result<Certificate> {
        let der: Vec<u8> = r.get(2)?;
        let not_after: i64 = r.get(4)?;
        let revoked: Option<i64> = r.get(5)?;
        let status = if revoked.is_some() {
            CertStatus::Revoked
        } else if not_after < now.unix_timestamp() {
            CertStatus::Expired
        } else {
            CertStatus::Active
        };
        Ok(Certificate {
            serial: r.get(0)?,
            kind: kind_of(&r.get::<_, String>(1)?),
            not_before: rfc3339(at(r.get(3)?)),
            not_after: rfc3339(at(not_after)),
            status,
            sha256: sha256_hex(&der),
            pem: to_pem(&der),
        })
    }

    fn request_row(&self, conn: &Connection, id: i64, now: OffsetDateTime) -> Result<Request> {
        let (device, status, reason, created): (String, String, Option<String>, i64) = conn
            .query_row(
                "SELECT device, status, reason, created FROM requests WHERE id=?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| CaError::NotFound(format!("request {id}")))?;
        let mut stmt = conn.prepare(
            "SELECT serial, kind, der, not_before, not_after, revoked_at FROM certificates WHERE request_id=?1 ORDER BY kind",
        )?;
        let certificates = stmt
            .query_map([id], |r| Self::map_cert(r, now))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let chain = if certificates.is_empty() {
            Vec::new()
        } else {
            vec![
                self.pki.issuing_pem().to_owned(),
                self.pki.root_pem().to_owned(),
            ]
        };
        Ok(Request {
            id: id as u64,
            device: device_of(&device),
            status: RequestStatus::from_code(&status).unwrap_or(RequestStatus::New),
            reason,
            created: rfc3339(at(created)),
            public_keys: Self::request_keys(conn, id)?
                .iter()
                .map(hex::encode)
                .collect(),
            certificates,
            chain,
        })
    }

    /// One request of `account` (or of anyone, for the admin: `None`).
    pub fn request(&self, account: Option<&Account>, id: i64) -> Result<Request> {
        let conn = self.db();
        let (user_id, _) = Self::request_state(&conn, id)?;
        if account.is_some_and(|a| a.id != user_id) {
            return Err(CaError::NotFound(format!("request {id}")));
        }
        let now = Self::now_in(&conn)?;
        self.request_row(&conn, id, now)
    }

    /// Requests, newest first: of one account, or all (admin).
    pub fn requests(&self, account: Option<&Account>) -> Result<Vec<Request>> {
        let conn = self.db();
        let now = Self::now_in(&conn)?;
        let mut stmt = conn
            .prepare("SELECT id FROM requests WHERE ?1 IS NULL OR user_id=?1 ORDER BY id DESC")?;
        let ids = stmt
            .query_map([account.map(|a| a.id)], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.into_iter()
            .map(|id| self.request_row(&conn, id, now))
            .collect()
    }

    /// A user's certificates, newest first ("two certificates are shown, pick the upper one").
    pub fn certificates(&self, account: &Account) -> Result<Vec<Certificate>> {
        let conn = self.db();
        let now = Self::now_in(&conn)?;
        let mut stmt = conn.prepare(
            "SELECT serial, kind, der, not_before, not_after, revoked_at FROM certificates
             WHERE user_id=?1 ORDER BY not_before DESC, rowid DESC",
        )?;
        let certs = stmt
            .query_map([account.id], |r| Self::map_cert(r, now))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(certs)
    }

    /// Revokes a certificate (admin). Revoking twice is refused, so the first time stays.
    pub fn revoke(&self, serial: &str, reason: RevocationReason) -> Result<Certificate> {
        let conn = self.db();
        let serial = serial.to_ascii_lowercase();
        let revoked: Option<Option<i64>> = conn
            .query_row(
                "SELECT revoked_at FROM certificates WHERE serial=?1",
                [&serial],
                |r| r.get(0),
            )
            .optional()?;
        match revoked {
            None => return Err(CaError::NotFound(format!("certificate {serial}"))),
            Some(Some(_)) => {
                return Err(CaError::Conflict(format!(
                    "certificate {serial} is already revoked"
                )));
            }
            Some(None) => {}
        }
        let now = Self::now_in(&conn)?;
        conn.execute(
            "UPDATE certificates SET revoked_at=?2, revoke_reason=?3 WHERE serial=?1",
            params![serial, now.unix_timestamp(), reason as i64],
        )?;
        Self::certificate_row(&conn, &serial, now)
    }

    /// The owner revokes an old certificate once a newer one of the same kind is active
    /// ("superseded certificates revoked on request").
    pub fn revoke_superseded(&self, account: &Account, serial: &str) -> Result<Certificate> {
        let serial = serial.to_ascii_lowercase();
        {
            let conn = self.db();
            let row: Option<(i64, String, i64)> = conn
                .query_row(
                    "SELECT user_id, kind, not_before FROM certificates WHERE serial=?1",
                    [&serial],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let (owner, kind, not_before) = match row {
                Some(row) if row.0 == account.id => row,
                _ => return Err(CaError::NotFound(format!("certificate {serial}"))),
            };
            let now = Self::now_in(&conn)?.unix_timestamp();
            let newer: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM certificates WHERE user_id=?1 AND kind=?2 AND serial<>?3
                 AND revoked_at IS NULL AND not_after > ?4 AND not_before >= ?5)",
                params![owner, kind, serial, now, not_before],
                |r| r.get(0),
            )?;
            if !newer {
                return Err(CaError::Conflict(format!(
                    "certificate {serial} is your newest valid {kind} certificate; it can only be revoked once a newer one is issued"
                )));
            }
        }
        self.revoke(&serial, RevocationReason::Superseded)
    }

    /// The current CRL ("СОС"), DER, signed by the issuing CA. Every call gets the next CRL
    /// number (RFC 5280 §5.2.3: monotonically increasing).
    pub fn crl(&self) -> Result<Vec<u8>> {
        let conn = self.db();
        let now = Self::now_in(&conn)?;
        let number: i64 = conn.query_row(
            "INSERT INTO meta(key, value) VALUES('crl_number', 1)
             ON CONFLICT(key) DO UPDATE SET value=value+1 RETURNING value",
            [],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare("SELECT serial, revoked_at, revoke_reason FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at")?;
        let revoked = stmt
            .query_map([], |r| {
                let serial: String = r.get(0)?;
                Ok(Revoked {
                    serial: hex::decode(serial).unwrap_or_default(),
                    at: at(r.get(1)?),
                    reason: reason_from_code(r.get(2)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(self.pki.crl(&revoked, number as u64, now)?)
    }

    /// The request's certificates with the data the application PDF prints.
    pub fn application(&self, account: &Account, id: i64) -> Result<(Request, OffsetDateTime)> {
        let request = self.request(Some(account), id)?;
        if request.status != RequestStatus::Issued {
            return Err(CaError::Conflict(format!(
                "request {id} is {}; the application is made once certificates are issued",
                request.status.code()
            )));
        }
        Ok((request, self.now()?))
    }

    /// Everything, for "changes nothing" checks and the admin's overview.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let requests = self.requests(None)?;
        let conn = self.db();
        let mut stmt = conn.prepare("SELECT login FROM users ORDER BY id")?;
        let users = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = conn
            .prepare("SELECT serial, revoked_at IS NOT NULL FROM certificates ORDER BY serial")?;
        let certificates = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Snapshot {
            users,
            requests,
            certificates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_their_codes() {
        for name in [
            "unspecified",
            "key_compromise",
            "affiliation_changed",
            "superseded",
            "cessation_of_operation",
            "privilege_withdrawn",
        ] {
            let reason = parse_reason(name).unwrap();
            assert_eq!(reason_from_code(reason as i64), reason);
        }
        assert!(parse_reason("because").is_err());
    }

    #[test]
    fn new_users_are_validated() {
        let good = NewUser {
            login: "ivanov".into(),
            password: "password1".into(),
            full_name: "ИВАНОВ ИВАН".into(),
            iin: "123456789012".into(),
        };
        assert!(validate_new_user(&good).is_ok());
        for bad in [
            NewUser {
                login: "a b".into(),
                ..good.clone()
            },
            NewUser {
                password: "short".into(),
                ..good.clone()
            },
            NewUser {
                iin: "12345".into(),
                ..good.clone()
            },
            NewUser {
                full_name: " ".into(),
                ..good.clone()
            },
        ] {
            assert!(validate_new_user(&bad).is_err(), "{bad:?}");
        }
    }
}
