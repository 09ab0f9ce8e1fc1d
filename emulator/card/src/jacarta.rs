//! The JaCarta PKI application, as far as anything public describes it: OpenSC pull request
//! 3423 (`card-jacartapki.c`) selects it with `00 A4 04 0C` and reads the serial number as the
//! capability `80 CB 01 14` (8 bytes). Its PIN is checked there by a proprietary 3DES
//! challenge; kilt accepts the ISO/IEC 7816-4 §11.5.6 VERIFY instead (plain PIN, no padding),
//! with that driver's references: user 20, SO 10.

use crate::apdu::{Command, StatusWord};
use crate::door::{Door, status_of};
use kilt_emulator::Pin;

/// PIN references of `jacartapki.h` (PR 3423); b8 set is the same PIN, "specific" (7816-4
/// Table 65).
const USER_PIN_REF: u8 = 0x20;
const SO_PIN_REF: u8 = 0x10;
/// The capability tag that holds the serial number (P1 P2 of `80 CB`).
const CAP_SERIAL: (u8, u8) = (0x01, 0x14);

/// Handles one command for the selected JaCarta application; `Ok` is the response data.
pub fn handle(door: &mut Door, cmd: &Command) -> Result<Vec<u8>, StatusWord> {
    match (cmd.cla, cmd.ins) {
        (0x80, 0xCB) => get_capability(door, cmd),
        (0x00, 0x20) => verify(door, cmd),
        (_, 0x20 | 0xCB) => Err(StatusWord::CLA_NOT_SUPPORTED),
        _ => Err(StatusWord::INS_NOT_SUPPORTED),
    }
}

fn get_capability(door: &mut Door, cmd: &Command) -> Result<Vec<u8>, StatusWord> {
    if (cmd.p1, cmd.p2) != CAP_SERIAL {
        // The other capabilities (crypto 0180, key lengths 0188) are not public.
        return Err(StatusWord::REFERENCE_NOT_FOUND);
    }
    door.serial().map_err(|e| status_of(&e))
}

fn verify(door: &mut Door, cmd: &Command) -> Result<Vec<u8>, StatusWord> {
    if cmd.p1 != 0 {
        return Err(StatusWord::WRONG_P1P2);
    }
    let so = match cmd.p2 & 0x7F {
        USER_PIN_REF => false,
        SO_PIN_REF => true,
        _ => return Err(StatusWord::REFERENCE_NOT_FOUND),
    };
    if cmd.data.is_empty() {
        // ISO/IEC 7816-4 §11.5.6: no data asks the state; no try is spent.
        let (tries, locked) = door.pin_state(so).map_err(|e| status_of(&e))?;
        return if locked {
            Err(StatusWord::AUTH_BLOCKED)
        } else if !so && door.logged_in_user() {
            Ok(Vec::new())
        } else {
            Err(StatusWord::tries_left(tries))
        };
    }
    door.login(so, &Pin::new(cmd.data.clone()))
        .map_err(|e| status_of(&e))?;
    Ok(Vec::new())
}
