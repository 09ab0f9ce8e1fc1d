//! proptest: random interleavings of customer steps, bank processing, the operator, clock
//! shifts and duplicated deliveries keep the invariants — one active certificate per profile,
//! whose key the customer holds; a regeneration's status only moves along the table's order
//! or to rejected.

mod common;

use std::collections::HashMap;

use common::{SUBSCRIBER, csr, der, key, sign};
use kilt_mock_bank::{Bank, BankError, Settings};
use kilt_protocol::Lang;
use kilt_protocol::bank::{Status, Submit, activation_message};
use proptest::prelude::*;
use rcgen::KeyPair;

#[derive(Clone, Debug)]
enum Op {
    Start,
    /// Submit a fresh key's CSR, signed by the old key (or, if `wrong`, by the new one).
    Submit {
        wrong: bool,
    },
    Approve,
    Reject,
    /// Activate the latest regeneration with its new key (or, if `wrong`, the old one).
    Activate {
        wrong: bool,
    },
    Shift(i64),
    /// Repeat the previous operation, as a duplicated delivery would.
    Duplicate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Start),
        3 => proptest::bool::weighted(0.25).prop_map(|wrong| Op::Submit { wrong }),
        1 => Just(Op::Approve),
        1 => Just(Op::Reject),
        3 => proptest::bool::weighted(0.25).prop_map(|wrong| Op::Activate { wrong }),
        1 => (0i64..40).prop_map(Op::Shift),
        2 => Just(Op::Duplicate),
    ]
}

fn clone(k: &KeyPair) -> KeyPair {
    KeyPair::try_from(k.serialize_der().as_slice()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold(auto in any::<bool>(), ops in proptest::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let bank = Bank::open(dir.path(), Settings { auto_process: auto, processing_seconds: 0, ..Settings::default() }).unwrap();
        let mut current = key();
        let made = bank.create_subscriber(SUBSCRIBER, &csr(&current, SUBSCRIBER), Some(20)).unwrap();
        let profile = made.profile.identifier.clone();
        // New keys by regeneration id.
        let mut pending: HashMap<u64, KeyPair> = HashMap::new();
        let mut statuses: HashMap<u64, Status> = HashMap::new();
        let mut previous: Option<Op> = None;

        for op in ops {
            let op = match op { Op::Duplicate => previous.clone().unwrap_or(Op::Start), op => op };
            let latest = bank.regenerations(Lang::En).unwrap().into_iter().next();
            let result: Result<(), BankError> = match &op {
                Op::Start => bank.start(&profile, Lang::En).map(|_| ()),
                Op::Submit { wrong } => match &latest {
                    // A submission signed by the new key instead of the old one is refused.
                    Some(r) => {
                        let new = pending.get(&r.id).map(clone).unwrap_or_else(key);
                        let c = csr(&new, SUBSCRIBER);
                        let signer = if *wrong { &new } else { &current };
                        let out = bank.submit(&profile, r.id as i64, &Submit { signature: sign(signer, &der(&c)), csr: c }, Lang::En);
                        if out.is_ok() {
                            prop_assert!(!wrong || pending.contains_key(&r.id), "accepted a request signed by the new key");
                            pending.entry(r.id).or_insert(new);
                        }
                        out.map(|_| ())
                    }
                    None => Ok(()),
                },
                Op::Approve => latest.as_ref().map_or(Ok(()), |r| bank.approve(r.id as i64, Lang::En).map(|_| ())),
                Op::Reject => latest.as_ref().map_or(Ok(()), |r| bank.reject(r.id as i64, "нет", Lang::En).map(|_| ())),
                Op::Activate { wrong } => match (&latest, latest.as_ref().and_then(|r| pending.get(&r.id))) {
                    (Some(r), Some(new)) => {
                        let r = bank.regeneration(None, r.id as i64, Lang::En).unwrap();
                        let serial = r.new_serial.clone().unwrap_or_default();
                        let signer = if *wrong { &current } else { new };
                        let out = bank.activate(&profile, r.id as i64, &sign(signer, &activation_message(r.id, &serial)), Lang::En);
                        if let Ok(done) = &out {
                            prop_assert!(!wrong || r.status == Status::InOperation, "activated by the old key");
                            prop_assert_eq!(done.status, Status::InOperation);
                            current = clone(new);
                        }
                        out.map(|_| ())
                    }
                    _ => Ok(()),
                },
                Op::Shift(days) => bank.shift_clock(*days).map(|_| ()),
                Op::Duplicate => unreachable!(),
            };
            if let Err(e) = &result {
                let code = e.status_code().0.as_u16();
                prop_assert!((400..500).contains(&code), "{:?} failed inside: {}", op, e);
            }
            previous = Some(op);

            // One active certificate, and it is for the key the customer holds.
            let snapshot = bank.snapshot().unwrap();
            let active: Vec<_> = snapshot.certificates.iter().filter(|c| c.2 == "active").collect();
            prop_assert_eq!(active.len(), 1);
            let params = bank.signature_params(&profile).unwrap();
            let active_der = der(&params.certificate);
            let (_, cert) = x509_parser::parse_x509_certificate(&active_der).unwrap();
            prop_assert_eq!(cert.public_key().subject_public_key.data.as_ref(), current.public_key_raw());
            for r in snapshot.regenerations {
                if let Some(before) = statuses.insert(r.id, r.status) {
                    prop_assert!(before.can_reach(r.status), "regeneration {} went {:?} -> {:?}", r.id, before, r.status);
                }
            }
        }
    }
}
