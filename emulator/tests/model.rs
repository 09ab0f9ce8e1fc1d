//! Model-based test: random sequences of session, login, PIN and object operations against a small
//! reference model of PKCS#11 2.40 §5.6 (sessions, login state, PIN counters, object visibility).
//! After every step the token must agree with the model.

use kilt_emulator::object::{self, Attr};
use kilt_emulator::{
    Config, Emulator, Error, ObjectHandle, Pin, SessionHandle, SessionState, UserType,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const SO: &str = "00000000";
const USER: &str = "1234567890";
const TRIES: u32 = 10;

#[derive(Clone, Debug)]
enum Op {
    Open {
        rw: bool,
    },
    Close(usize),
    Login {
        so: bool,
        correct: bool,
        s: usize,
    },
    Logout(usize),
    Create {
        s: usize,
        token: bool,
        private: bool,
    },
    Destroy {
        s: usize,
        o: usize,
    },
    InitPin(usize),
    Find(usize),
    /// C_GetAttributeValue by handle: a private object is not there for a public session.
    Get {
        s: usize,
        o: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(|rw| Op::Open { rw }),
        (0..4usize).prop_map(Op::Close),
        (any::<bool>(), prop::bool::weighted(0.4), 0..4usize)
            .prop_map(|(so, correct, s)| Op::Login { so, correct, s }),
        (0..4usize).prop_map(Op::Logout),
        (0..4usize, any::<bool>(), any::<bool>()).prop_map(|(s, token, private)| Op::Create {
            s,
            token,
            private
        }),
        (0..4usize, 0..8usize).prop_map(|(s, o)| Op::Destroy { s, o }),
        (0..4usize).prop_map(Op::InitPin),
        (0..4usize).prop_map(Op::Find),
        (0..4usize, 0..8usize).prop_map(|(s, o)| Op::Get { s, o }),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    So,
    User,
}

#[derive(Debug)]
struct Obj {
    token: bool,
    private: bool,
    owner: SessionHandle,
}

#[derive(Default, Debug)]
struct Model {
    sessions: Vec<(SessionHandle, bool)>,
    login: Option<Who>,
    user_tries: u32,
    so_tries: u32,
    objects: BTreeMap<ObjectHandle, Obj>,
}

impl Model {
    fn visible(&self, o: &Obj) -> bool {
        !o.private || self.login == Some(Who::User)
    }

    fn may_write(&self, rw: bool, token: bool, private: bool) -> Result<(), Error> {
        if token && !rw {
            return Err(Error::SessionReadOnly);
        }
        if private && self.login != Some(Who::User) {
            return Err(Error::NotLoggedIn);
        }
        Ok(())
    }
}

/// Compares outcomes by their full Debug form (variant and fields, e.g. tries left).
fn same<T: std::fmt::Debug, U: std::fmt::Debug>(got: &Result<T, Error>, want: &Result<U, Error>) {
    match (got, want) {
        (Ok(_), Ok(_)) => {}
        (Err(g), Err(w)) => assert_eq!(format!("{g:?}"), format!("{w:?}")),
        _ => panic!("token gave {got:?}, model expected {want:?}"),
    }
}

fn data(token: bool, private: bool) -> Vec<Attr> {
    vec![
        (
            cryptoki_sys::CKA_CLASS,
            object::ulong(cryptoki_sys::CKO_DATA),
        ),
        (cryptoki_sys::CKA_TOKEN, object::bool(token)),
        (cryptoki_sys::CKA_PRIVATE, object::bool(private)),
    ]
}

fn step(emu: &Emulator, m: &mut Model, op: &Op) {
    let pick = |i: usize| m.sessions.get(i % m.sessions.len().max(1)).copied();
    match op {
        Op::Open { rw } => {
            let want = if !rw && m.login == Some(Who::So) {
                Err(Error::SoSessionExists)
            } else {
                Ok(())
            };
            let got = emu.open_session(0, *rw, true);
            same(&got, &want);
            if let Ok(h) = got {
                m.sessions.push((h, *rw));
            }
        }
        Op::Close(i) => {
            let Some((h, _)) = pick(*i) else { return };
            emu.close_session(h).unwrap();
            m.sessions.retain(|(s, _)| *s != h);
            m.objects.retain(|_, o| o.token || o.owner != h);
            if m.sessions.is_empty() {
                m.login = None;
            }
        }
        Op::Login { so, correct, s } => {
            let Some((h, _)) = pick(*s) else { return };
            let who = if *so { Who::So } else { Who::User };
            let tries = if *so { m.so_tries } else { m.user_tries };
            let want = match m.login {
                Some(cur) if cur == who => Err(Error::AlreadyLoggedIn),
                Some(_) => Err(Error::AnotherUserLoggedIn),
                None if *so && m.sessions.iter().any(|(_, rw)| !rw) => {
                    Err(Error::ReadOnlySessionExists)
                }
                None if tries == 0 => Err(Error::PinLocked),
                None if *correct => Ok(()),
                None => Err(Error::PinIncorrect {
                    tries_left: tries - 1,
                }),
            };
            let pin = match (so, correct) {
                (true, true) => SO,
                (false, true) => USER,
                _ => "99999999",
            };
            let user = if *so { UserType::So } else { UserType::User };
            let got = emu.login(h, user, Some(&Pin::from(pin)));
            same(&got, &want);
            let counter = if *so {
                &mut m.so_tries
            } else {
                &mut m.user_tries
            };
            match want {
                Ok(()) => {
                    *counter = TRIES;
                    m.login = Some(who);
                }
                Err(Error::PinIncorrect { tries_left }) => *counter = tries_left,
                _ => {}
            }
        }
        Op::Logout(i) => {
            let Some((h, _)) = pick(*i) else { return };
            let want = if m.login.is_none() {
                Err(Error::NotLoggedIn)
            } else {
                Ok(())
            };
            same(&emu.logout(h), &want);
            m.login = None;
        }
        Op::Create { s, token, private } => {
            let Some((h, rw)) = pick(*s) else { return };
            let want = m.may_write(rw, *token, *private);
            let got = emu.create_object(h, &data(*token, *private));
            same(&got, &want);
            if let Ok(o) = got {
                m.objects.insert(
                    o,
                    Obj {
                        token: *token,
                        private: *private,
                        owner: h,
                    },
                );
            }
        }
        Op::Destroy { s, o } => {
            let Some((h, rw)) = pick(*s) else { return };
            let Some((&oh, obj)) = m.objects.iter().nth(*o % m.objects.len().max(1)) else {
                return;
            };
            let want = if !m.visible(obj) {
                Err(Error::ObjectNotFound)
            } else {
                m.may_write(rw, obj.token, obj.private)
            };
            same(&emu.destroy_object(h, oh), &want);
            if want.is_ok() {
                m.objects.remove(&oh);
            }
        }
        Op::InitPin(i) => {
            let Some((h, rw)) = pick(*i) else { return };
            let want = if !rw {
                Err(Error::SessionReadOnly)
            } else if m.login != Some(Who::So) {
                Err(Error::NotLoggedIn)
            } else {
                Ok(())
            };
            same(&emu.init_pin(h, Some(&Pin::from(USER))), &want);
            if want.is_ok() {
                m.user_tries = TRIES;
            }
        }
        Op::Get { s, o } => {
            let Some((h, _)) = pick(*s) else { return };
            let Some((&oh, obj)) = m.objects.iter().nth(*o % m.objects.len().max(1)) else {
                return;
            };
            let want = if m.visible(obj) {
                Ok(())
            } else {
                Err(Error::ObjectNotFound)
            };
            same(
                &emu.get_attributes(h, oh, &[cryptoki_sys::CKA_CLASS]),
                &want,
            );
        }
        Op::Find(i) => {
            let Some((h, _)) = pick(*i) else { return };
            emu.find_init(h, &[]).unwrap();
            let got = emu.find_next(h, usize::MAX).unwrap();
            emu.find_final(h).unwrap();
            let want: Vec<ObjectHandle> = m
                .objects
                .iter()
                .filter(|(_, o)| m.visible(o))
                .map(|(h, _)| *h)
                .collect();
            assert_eq!(got, want, "visible objects");
        }
    }
}

fn check_invariants(emu: &Emulator, m: &Model) {
    let info = emu.token_info(0).unwrap();
    assert_eq!(info.user_pin.tries_left, m.user_tries, "user PIN counter");
    assert_eq!(info.so_pin.tries_left, m.so_tries, "SO PIN counter");
    assert_eq!(info.user_pin.locked, m.user_tries == 0);
    assert_eq!(info.user_pin.final_try, m.user_tries == 1);
    assert_eq!(info.sessions, m.sessions.len() as u64);
    for (h, rw) in &m.sessions {
        let want = match (m.login, rw) {
            (None, false) => SessionState::RoPublic,
            (None, true) => SessionState::RwPublic,
            (Some(Who::User), false) => SessionState::RoUser,
            (Some(Who::User), true) => SessionState::RwUser,
            (Some(Who::So), _) => SessionState::RwSo,
        };
        assert_eq!(emu.session_info(*h).unwrap().state, want, "state of {h:?}");
    }
}

/// Runs `ops` on a fresh token and the model side by side.
fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    // The key derivation's cost is not under test here.
    config.profile.kdf_iterations = 1;
    let emu = Emulator::new(config).unwrap();
    emu.provision(0, "model", &Pin::from(SO), &Pin::from(USER))
        .unwrap();
    let mut m = Model {
        user_tries: TRIES,
        so_tries: TRIES,
        ..Default::default()
    };
    for op in ops {
        step(&emu, &mut m, op);
        check_invariants(&emu, &m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_token_behaves_like_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

/// A sequence random ones reach too rarely to be sure of: a private object made while logged
/// in is not there by its handle once the user logged out, and is again after a new login.
#[test]
fn a_private_object_is_not_reachable_by_handle_after_logout() {
    let (login, get) = (
        Op::Login {
            so: false,
            correct: true,
            s: 0,
        },
        Op::Get { s: 0, o: 0 },
    );
    run(&[
        Op::Open { rw: true },
        login.clone(),
        Op::Create {
            s: 0,
            token: false,
            private: true,
        },
        get.clone(),
        Op::Logout(0),
        get.clone(),
        login,
        get,
    ]);
}
