//! proptest: random sequences of request, approve, reject, revoke and clock shifts against the
//! CA core keep its invariants — a serial is never reused, every revoked certificate is on the
//! next CRL, no certificate outlives the issuing CA, and a request only moves
//! new → issued or new → rejected.

mod common;

use std::collections::{HashMap, HashSet};

use common::{IIN, LOGIN, NAME, PASSWORD, csr, key};
use kilt_mock_ca::{Ca, CaError, Settings};
use kilt_protocol::ca::{CertKind, CsrItem, Device, IssueRequest, NewUser, RequestStatus};
use proptest::prelude::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Debug)]
enum Op {
    Submit { auth: bool, sign: bool },
    Approve(usize),
    Reject(usize),
    Revoke(usize),
    Shift(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), any::<bool>()).prop_map(|(auth, sign)| Op::Submit { auth, sign }),
        2 => (0usize..8).prop_map(Op::Approve),
        1 => (0usize..8).prop_map(Op::Reject),
        2 => (0usize..16).prop_map(Op::Revoke),
        1 => (-30i64..400).prop_map(Op::Shift),
        // Near the end of the issuing CA (10 years): a year's certificate would outlive it.
        1 => (3300i64..3700).prop_map(Op::Shift),
    ]
}

fn crl_serials(der: &[u8]) -> HashSet<String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect()
}

fn allowed(from: RequestStatus, to: RequestStatus) -> bool {
    use RequestStatus::*;
    from == to
        || matches!(
            (from, to),
            (New, Issued) | (New, Rejected) | (New, Approved) | (Approved, Issued)
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_any_sequence(auto in any::<bool>(), ops in proptest::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::open(dir.path(), Settings {
            validity_days: 365,
            auto_approve: auto,
            crl_url: "https://127.0.0.1/crl/issuing.crl".into(),
            session_seconds: 60,
            font: kilt_mock_ca::pdf::DEFAULT_FONT.into(),
            password_lock: kilt_mock_ca::ca::DEFAULT_PASSWORD_LOCK,
        }).unwrap();
        ca.create_user(&NewUser { login: LOGIN.into(), password: PASSWORD.into(), full_name: NAME.into(), iin: IIN.into() }).unwrap();
        let account = ca.account(LOGIN).unwrap();
        let ca_end = ca.pki().issuing_not_after();
        let mut seen: HashSet<String> = HashSet::new();
        let mut statuses: HashMap<u64, RequestStatus> = HashMap::new();

        for op in ops {
            let requests = ca.requests(None).unwrap();
            let certs = ca.certificates(&account).unwrap();
            let result: Result<(), CaError> = match op {
                Op::Submit { auth, sign } => {
                    let mut csrs = Vec::new();
                    if auth { csrs.push(CsrItem { kind: CertKind::Auth, csr: csr(&key(), NAME, IIN) }); }
                    if sign { csrs.push(CsrItem { kind: CertKind::Sign, csr: csr(&key(), NAME, IIN) }); }
                    ca.submit(&account, &IssueRequest { device: Device::JaCarta, csrs }).map(|_| ())
                }
                Op::Approve(i) => match requests.get(i) { Some(r) => ca.approve(r.id as i64).map(|_| ()), None => Ok(()) },
                Op::Reject(i) => match requests.get(i) { Some(r) => ca.reject(r.id as i64, "нет").map(|_| ()), None => Ok(()) },
                Op::Revoke(i) => match certs.get(i) {
                    Some(c) => ca.revoke(&c.serial, rcgen::RevocationReason::KeyCompromise).map(|_| ()),
                    None => Ok(()),
                },
                Op::Shift(days) => ca.shift_clock(days).map(|_| ()),
            };
            // Refusals are fine (empty request, terminal state, expired CA); failures are not.
            if let Err(e) = &result {
                let code = e.status_code().0.as_u16();
                prop_assert!((400..500).contains(&code) || matches!(e, CaError::CaExpired(_)), "{e}");
            }

            let certs = ca.certificates(&account).unwrap();
            let mut serials = HashSet::new();
            for c in &certs {
                prop_assert!(serials.insert(c.serial.clone()), "serial {} appears twice", c.serial);
                let not_after = OffsetDateTime::parse(&c.not_after, &Rfc3339).unwrap();
                prop_assert!(not_after <= ca_end, "{} outlives the issuing CA", c.serial);
            }
            // A serial, once issued, never disappears nor comes back for another certificate.
            prop_assert!(seen.is_subset(&serials));
            seen = serials;
            let on_crl = crl_serials(&ca.crl().unwrap());
            for c in certs.iter().filter(|c| c.status == kilt_protocol::ca::CertStatus::Revoked) {
                prop_assert!(on_crl.contains(&c.serial), "revoked {} missing from the CRL", c.serial);
            }
            prop_assert_eq!(on_crl.len(), certs.iter().filter(|c| c.status == kilt_protocol::ca::CertStatus::Revoked).count());
            for r in ca.requests(None).unwrap() {
                if let Some(before) = statuses.insert(r.id, r.status) {
                    prop_assert!(allowed(before, r.status), "request {} went {:?} -> {:?}", r.id, before, r.status);
                }
                prop_assert_eq!(r.status == RequestStatus::Issued, !r.certificates.is_empty());
            }
        }
    }
}
