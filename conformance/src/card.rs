//! `kilt-conformance card`: ISO/IEC 7816-4 behaviour any card should have, and the PIV subset
//! (NIST SP 800-73-4 Part 2) where the card has it, over PC/SC. Safe on a physical token: no PIN
//! try is spent unless `--destructive`, and then the SO (the PIV PUK) restores the PIN.

use crate::cases::{Case, Check, R};
use crate::{Error, Group, Report, Suite, execute};
use kilt_emulator::Pin;
use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use std::cell::RefCell;
use std::ffi::CString;

/// What to test and how.
#[derive(Debug, Clone)]
pub struct CardOptions {
    /// The PC/SC reader's name, e.g. "Virtual PCD 00 00".
    pub reader: String,
    /// The user PIN, for the destructive PIN cases.
    pub user_pin: Option<Pin>,
    /// The SO PIN (the PIV PUK), to restore a locked PIN.
    pub so_pin: Option<Pin>,
    /// Run cases that spend PIN tries (and restore the PIN with the SO PIN).
    pub destructive: bool,
}

/// What a card case gets.
pub struct CardCtx {
    card: RefCell<pcsc::Card>,
    pub options: CardOptions,
}

const PIV_AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
const JACARTA_AID: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x01, 0x64, 0x4C, 0x41, 0x53, 0x45, 0x52, 0x00, 0x01,
];
/// An AID registered to nobody (RID F0 is for national/private use, ISO/IEC 7816-5).
const UNKNOWN_AID: [u8; 7] = [0xF0, 0x6B, 0x69, 0x6C, 0x74, 0x00, 0x99];
const DISCOVERY: [u8; 3] = [0x5C, 0x01, 0x7E];
const WRONG_PIN: &str = "99999998";

/// A response: data and status word.
struct Rapdu {
    data: Vec<u8>,
    sw: u16,
}

impl CardCtx {
    /// One APDU, answered as sent (no automatic GET RESPONSE).
    fn send(&self, apdu: &[u8]) -> Result<Rapdu, Check> {
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let card = self.card.borrow();
        let r = card
            .transmit(apdu, &mut buf)
            .map_err(|e| Check::Fail(format!("the reader failed the exchange: {e}")))?;
        if r.len() < 2 {
            return Err(Check::Fail(format!(
                "an answer of {} bytes has no status word",
                r.len()
            )));
        }
        let (data, sw) = r.split_at(r.len() - 2);
        Ok(Rapdu {
            data: data.to_vec(),
            sw: u16::from_be_bytes([sw[0], sw[1]]),
        })
    }

    /// One APDU with `61xx` followed by GET RESPONSE, as middleware does.
    fn send_all(&self, apdu: &[u8]) -> Result<Rapdu, Check> {
        let mut r = self.send(apdu)?;
        let mut data = std::mem::take(&mut r.data);
        let mut rounds = 0;
        while r.sw >> 8 == 0x61 {
            rounds += 1;
            if rounds > 64 {
                return Err(Check::Fail("more than 64 GET RESPONSE rounds".into()));
            }
            r = self.send(&[0x00, 0xC0, 0x00, 0x00, r.sw as u8])?;
            data.append(&mut r.data);
        }
        Ok(Rapdu { data, sw: r.sw })
    }

    /// A fresh start: the card reset, nothing selected, nobody verified.
    fn reset(&self) -> Result<(), Check> {
        self.card
            .borrow_mut()
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
            .map_err(|e| Check::Fail(format!("cannot reset the card: {e}")))
    }

    fn select(&self, aid: &[u8]) -> Result<Rapdu, Check> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
        apdu.extend_from_slice(aid);
        apdu.push(0x00);
        self.send_all(&apdu)
    }

    /// Selects PIV, or skips the case when the card has no PIV application.
    fn piv(&self) -> R {
        self.reset()?;
        match self.select(&PIV_AID)?.sw {
            0x9000 => Ok(()),
            sw => Err(Check::Skip(format!(
                "the card has no PIV application ({sw:04X})"
            ))),
        }
    }
}

fn expect(what: &str, got: u16, want: &[u16]) -> R {
    if want.contains(&got) {
        Ok(())
    } else {
        let want: Vec<String> = want.iter().map(|w| format!("{w:04X}")).collect();
        Err(Check::Fail(format!(
            "{what}: answered {got:04X}, expected {}",
            want.join(" or ")
        )))
    }
}

fn get_data(object: &[u8], le: u8) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xCB, 0x3F, 0xFF, object.len() as u8];
    apdu.extend_from_slice(object);
    apdu.push(le);
    apdu
}

fn verify(pin: Option<&[u8]>) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80];
    if let Some(p) = pin {
        let mut field = p.to_vec();
        field.resize(8, 0xFF);
        apdu.push(8);
        apdu.extend_from_slice(&field);
    }
    apdu
}

fn tries(sw: u16) -> Option<u16> {
    (sw & 0xFFF0 == 0x63C0).then_some(sw & 0xF)
}

fn pin_of(p: &Option<Pin>, flag: &str) -> Result<Vec<u8>, Check> {
    let p = p
        .as_ref()
        .ok_or_else(|| Check::Skip(format!("needs --{flag}")))?;
    if p.as_bytes().len() > 8 {
        return Err(Check::Skip(
            "a PIV PIN has at most 8 characters; this token's is longer".into(),
        ));
    }
    Ok(p.as_bytes().to_vec())
}

fn select_unknown_aid(c: &CardCtx) -> R {
    c.reset()?;
    expect(
        "SELECT of an unknown AID",
        c.select(&UNKNOWN_AID)?.sw,
        &[0x6A82],
    )
}

fn failed_select_keeps_application(c: &CardCtx) -> R {
    c.piv()?;
    expect(
        "SELECT of an unknown AID",
        c.select(&UNKNOWN_AID)?.sw,
        &[0x6A82],
    )?;
    let r = c.send_all(&get_data(&DISCOVERY, 0))?;
    expect("GET DATA after the failed SELECT", r.sw, &[0x9000, 0x6A82])
}

fn unknown_ins(c: &CardCtx) -> R {
    c.piv().or_else(|_| c.reset())?;
    expect("INS 02", c.send(&[0x00, 0x02, 0x00, 0x00])?.sw, &[0x6D00])
}

fn wrong_cla(c: &CardCtx) -> R {
    c.reset()?;
    // CLA 001x xxxx is reserved (ISO/IEC 7816-4 §5.4.1 Table 2).
    expect(
        "CLA 20",
        c.send(&[0x20, 0xA4, 0x04, 0x00, 0x01, 0xA0])?.sw,
        &[0x6E00],
    )
}

fn wrong_lc(c: &CardCtx) -> R {
    c.reset()?;
    // Lc says 5 bytes, 1 follows.
    expect(
        "a command shorter than its Lc",
        c.send(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0])?.sw,
        &[0x6700],
    )
}

fn response_chaining(c: &CardCtx) -> R {
    c.piv()?;
    let whole = c.send_all(&get_data(&DISCOVERY, 0))?;
    expect("GET DATA of the discovery object", whole.sw, &[0x9000])?;
    let first = c.send(&get_data(&DISCOVERY, 4))?;
    if first.sw >> 8 != 0x61 && first.sw >> 8 != 0x6C {
        return Err(Check::Fail(format!(
            "Le 4 for a {}-byte object answered {:04X}, expected 61xx or 6Cxx",
            whole.data.len(),
            first.sw
        )));
    }
    let chained = if first.sw >> 8 == 0x61 {
        let mut r = c.send_all(&[0x00, 0xC0, 0x00, 0x00, first.sw as u8])?;
        let mut all = first.data.clone();
        all.append(&mut r.data);
        Rapdu {
            data: all,
            sw: r.sw,
        }
    } else {
        c.send_all(&get_data(&DISCOVERY, first.sw as u8))?
    };
    expect("the last part", chained.sw, &[0x9000])?;
    if chained.data != whole.data {
        return Err(Check::Fail("the parts do not add up to the object".into()));
    }
    Ok(())
}

fn get_response_without_data(c: &CardCtx) -> R {
    c.piv()?;
    let r = c.send(&[0x00, 0xC0, 0x00, 0x00, 0x10])?;
    if r.sw == 0x9000 || r.sw >> 8 == 0x61 {
        return Err(Check::Fail(format!(
            "GET RESPONSE with nothing pending answered {:04X}",
            r.sw
        )));
    }
    Ok(())
}

fn command_chaining(c: &CardCtx) -> R {
    c.piv()?;
    let whole = c.send_all(&get_data(&DISCOVERY, 0))?;
    let first = c.send(&[0x10, 0xCB, 0x3F, 0xFF, 0x01, DISCOVERY[0]])?;
    if first.sw == 0x6884 {
        return Err(Check::Skip(
            "the card does not chain commands (6884)".into(),
        ));
    }
    expect("a first chained part", first.sw, &[0x9000])?;
    let last = c.send_all(&[
        0x00,
        0xCB,
        0x3F,
        0xFF,
        0x02,
        DISCOVERY[1],
        DISCOVERY[2],
        0x00,
    ])?;
    expect("the last part", last.sw, &[whole.sw])?;
    if last.data != whole.data {
        return Err(Check::Fail(
            "the chained command was answered differently".into(),
        ));
    }
    Ok(())
}

fn verify_status_query(c: &CardCtx) -> R {
    c.piv()?;
    let a = c.send(&verify(None))?.sw;
    let b = c.send(&verify(None))?.sw;
    if tries(a).is_none() && a != 0x6983 && a != 0x9000 {
        return Err(Check::Fail(format!(
            "VERIFY without data answered {a:04X}, expected 63Cx, 6983 or 9000"
        )));
    }
    expect("a second status query (no try spent)", b, &[a])
}

fn jacarta_serial(c: &CardCtx) -> R {
    c.reset()?;
    let mut select = vec![0x00, 0xA4, 0x04, 0x0C, JACARTA_AID.len() as u8];
    select.extend_from_slice(&JACARTA_AID);
    if c.send(&select)?.sw != 0x9000 {
        return Err(Check::Skip(
            "the card has no JaCarta PKI application".into(),
        ));
    }
    let r = c.send_all(&[0x80, 0xCB, 0x01, 0x14, 0x00])?;
    expect("GET CAPABILITY 0114 (serial number)", r.sw, &[0x9000])?;
    if r.data.len() != 8 {
        return Err(Check::Fail(format!(
            "the serial number has {} bytes, OpenSC's driver expects 8",
            r.data.len()
        )));
    }
    Ok(())
}

fn wrong_pin_counts(c: &CardCtx) -> R {
    let pin = pin_of(&c.options.user_pin, "pin-source")?;
    c.piv()?;
    expect(
        "VERIFY with the right PIN",
        c.send(&verify(Some(&pin)))?.sw,
        &[0x9000],
    )?;
    let full = c.send(&verify(None))?.sw;
    expect("status after the right PIN", full, &[0x9000])?;
    let wrong = c.send(&verify(Some(WRONG_PIN.as_bytes())))?.sw;
    let left = tries(wrong)
        .ok_or_else(|| Check::Fail(format!("a wrong PIN answered {wrong:04X}, expected 63Cx")))?;
    expect(
        "status after a wrong PIN",
        c.send(&verify(None))?.sw,
        &[wrong],
    )?;
    expect(
        "the right PIN again",
        c.send(&verify(Some(&pin)))?.sw,
        &[0x9000],
    )?;
    c.reset()?;
    c.piv()?;
    let after = tries(c.send(&verify(None))?.sw).unwrap_or(0);
    if after != left + 1 {
        return Err(Check::Fail(format!(
            "the right PIN restored {after} tries, expected {}",
            left + 1
        )));
    }
    Ok(())
}

fn lock_and_unblock(c: &CardCtx) -> R {
    let pin = pin_of(&c.options.user_pin, "pin-source")?;
    let puk = pin_of(&c.options.so_pin, "so-pin-source")?;
    c.piv()?;
    let mut last = 0;
    for _ in 0..16 {
        last = c.send(&verify(Some(WRONG_PIN.as_bytes())))?.sw;
        if last == 0x6983 || last == 0x63C0 {
            break;
        }
    }
    expect(
        "the PIN after its tries",
        c.send(&verify(None))?.sw,
        &[0x6983],
    )
    .map_err(|e| match e {
        Check::Fail(m) => Check::Fail(format!("{m} (last wrong PIN: {last:04X})")),
        s => s,
    })?;
    expect(
        "the right PIN while locked",
        c.send(&verify(Some(&pin)))?.sw,
        &[0x6983],
    )?;
    let mut rrc = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    for p in [&puk, &pin] {
        let mut f = p.clone();
        f.resize(8, 0xFF);
        rrc.extend_from_slice(&f);
    }
    expect(
        "RESET RETRY COUNTER with the PUK",
        c.send(&rrc)?.sw,
        &[0x9000],
    )?;
    expect(
        "the PIN after the reset",
        c.send(&verify(Some(&pin)))?.sw,
        &[0x9000],
    )
}

/// The card cases, in order.
pub static CARD_CASES: &[Case<CardCtx>] = &[
    Case {
        id: "select-unknown-aid",
        group: Group::Iso7816,
        spec: "7816-4 §11.2.2, Table 6",
        title: "SELECT of an unknown AID answers 6A82",
        destructive: false,
        run: select_unknown_aid,
    },
    Case {
        id: "select-failure-keeps-application",
        group: Group::Iso7816,
        spec: "7816-4 §11.2.2",
        title: "A failed SELECT leaves the current application selected",
        destructive: false,
        run: failed_select_keeps_application,
    },
    Case {
        id: "unknown-ins",
        group: Group::Iso7816,
        spec: "7816-4 §5.6, Table 6",
        title: "An unknown instruction answers 6D00",
        destructive: false,
        run: unknown_ins,
    },
    Case {
        id: "wrong-cla",
        group: Group::Iso7816,
        spec: "7816-4 §5.4.1, Table 6",
        title: "A reserved class byte answers 6E00",
        destructive: false,
        run: wrong_cla,
    },
    Case {
        id: "wrong-lc",
        group: Group::Iso7816,
        spec: "7816-4 §5.2, Table 6",
        title: "A command shorter than its Lc answers 6700",
        destructive: false,
        run: wrong_lc,
    },
    Case {
        id: "response-chaining",
        group: Group::Iso7816,
        spec: "7816-4 §5.3.4",
        title: "A short Le gives 61xx (or 6Cxx); GET RESPONSE returns the rest, whole",
        destructive: false,
        run: response_chaining,
    },
    Case {
        id: "get-response-nothing-pending",
        group: Group::Iso7816,
        spec: "7816-4 §11.7.1",
        title: "GET RESPONSE with nothing pending is refused",
        destructive: false,
        run: get_response_without_data,
    },
    Case {
        id: "command-chaining",
        group: Group::Iso7816,
        spec: "7816-4 §5.3.3",
        title: "A command in chained parts (CLA b5) is answered as the whole",
        destructive: false,
        run: command_chaining,
    },
    Case {
        id: "verify-status-query",
        group: Group::Piv,
        spec: "SP 800-73-4 Pt 2 §3.2.1",
        title: "VERIFY without data tells the PIN's state and spends no try",
        destructive: false,
        run: verify_status_query,
    },
    Case {
        id: "jacarta-serial",
        group: Group::Iso7816,
        spec: "OpenSC PR 3423 (card-jacartapki.c)",
        title: "The JaCarta PKI application gives an 8-byte serial number (80 CB 01 14)",
        destructive: false,
        run: jacarta_serial,
    },
    Case {
        id: "verify-wrong-pin-counts",
        group: Group::Piv,
        spec: "SP 800-73-4 Pt 2 §3.2.1",
        title: "A wrong PIN spends one try (63Cx); the right one restores them",
        destructive: true,
        run: wrong_pin_counts,
    },
    Case {
        id: "pin-lock-and-unblock",
        group: Group::Piv,
        spec: "SP 800-73-4 Pt 2 §3.2.1, §3.2.3",
        title: "The PIN locks (6983) after its tries; the PUK (SO PIN) unblocks it",
        destructive: true,
        run: lock_and_unblock,
    },
];

/// Connects to the reader's card and runs every case.
pub fn run_card(options: &CardOptions) -> Result<Report, Error> {
    let fail = |e: pcsc::Error| Error::Card(format!("{}: {e}", options.reader));
    let ctx = Context::establish(Scope::User).map_err(|e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => Error::Card(
            "pcscd is not running; start it (pcscd, or systemctl start pcscd.socket)".into(),
        ),
        e => Error::Card(e.to_string()),
    })?;
    let name = CString::new(options.reader.as_str())
        .map_err(|_| Error::Card("a reader name has no NUL byte".into()))?;
    let card = ctx
        .connect(&name, ShareMode::Shared, Protocols::ANY)
        .map_err(|e| match e {
            pcsc::Error::UnknownReader => Error::Card(format!(
                "no reader {:?}; list them with `kilt readers` or `opensc-tool --list-readers`",
                options.reader
            )),
            pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
                Error::Card(format!("no card in {:?}", options.reader))
            }
            e => fail(e),
        })?;
    let atr = card.status2_owned().map_err(fail)?.atr().to_vec();
    let cx = CardCtx {
        card: RefCell::new(card),
        options: options.clone(),
    };
    let (cases, summary) = execute(CARD_CASES, &cx, options.destructive);
    // Leave the card as found: reset, nothing selected or verified.
    cx.reset().ok();
    Ok(Report {
        suite: Suite::Card,
        module: options.reader.clone(),
        library: format!(
            "ATR {}",
            atr.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        token: "card".into(),
        servers: None,
        summary,
        cases,
    })
}
