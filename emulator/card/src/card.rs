//! The card: power, application selection, command and response chaining (ISO/IEC 7816-4
//! §5.3–5.4), and dispatch to the JaCarta PKI and PIV applications.

use crate::apdu::{Command, Response, StatusWord};
use crate::door::Door;
use crate::error::CardError;
use crate::{jacarta, piv};
use kilt_emulator::{Emulator, SlotId};
use std::sync::Arc;

/// Longest command a chain may build (a certificate with room to spare).
pub const MAX_CHAIN: usize = 16 * 1024;

/// The applications on the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    JaCarta,
    Piv,
}

/// The card's identity, from the token's profile (`[card]` of the TOML).
#[derive(Clone, Debug)]
pub struct Identity {
    pub atr: Vec<u8>,
    pub jacarta_aid: Vec<u8>,
    pub piv_aid: Vec<u8>,
    pub management_key: [u8; 24],
}

/// One exchange as the trace shows it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The command's name (SELECT, VERIFY, ...).
    pub name: &'static str,
    /// The C-APDU, cut before any PIN bytes.
    pub command: Vec<u8>,
    /// How many bytes of PIN data were cut off `command`.
    pub hidden: usize,
    pub response: Vec<u8>,
    pub sw: StatusWord,
    pub note: Option<String>,
}

struct Chain {
    header: [u8; 4],
    data: Vec<u8>,
}

/// An emulated JaCarta PKI card over one token. It answers every byte string with a status word
/// and never panics.
pub struct Card {
    door: Door,
    identity: Identity,
    app: Option<App>,
    pending: Vec<u8>,
    chain: Option<Chain>,
    piv: piv::PivState,
}

impl Card {
    /// The card for the token in `slot`.
    pub fn new(emu: Arc<Emulator>, slot: SlotId) -> Result<Card, CardError> {
        let token = emu.token(slot)?;
        let profile = token.profile();
        let hex = |what: &str, s: &str| {
            kilt_emulator::profile::hex_bytes(s)
                .ok_or_else(|| CardError::Profile(format!("{what} must be hex bytes")))
        };
        let identity = Identity {
            atr: hex("atr", &profile.atr)?,
            jacarta_aid: hex("card.jacarta_aid", &profile.card.jacarta_aid)?,
            piv_aid: hex("card.piv_aid", &profile.card.piv_aid)?,
            management_key: hex("card.piv_management_key", &profile.card.piv_management_key)?
                .try_into()
                .map_err(|_| {
                    CardError::Profile("card.piv_management_key must be 24 bytes".into())
                })?,
        };
        if identity.piv_aid.len() < 5 {
            return Err(CardError::Profile("card.piv_aid is too short".into()));
        }
        Ok(Card {
            door: Door::new(emu, slot),
            identity,
            app: None,
            pending: Vec::new(),
            chain: None,
            piv: piv::PivState::default(),
        })
    }

    pub fn atr(&self) -> &[u8] {
        &self.identity.atr
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether the token is in its slot (`kilt-token unplug` takes it out).
    pub fn token_present(&self) -> bool {
        self.door
            .emulator()
            .slot_info(self.door.slot())
            .is_ok_and(|i| i.token_present)
    }

    /// Power off, power on and reset all end the card session: login, selection, chains.
    pub fn reset(&mut self) {
        self.door.close();
        self.app = None;
        self.pending.clear();
        self.chain = None;
        self.piv = piv::PivState::default();
    }

    /// One C-APDU in, one R-APDU out.
    pub fn transmit(&mut self, capdu: &[u8]) -> Vec<u8> {
        self.exchange(capdu).response
    }

    /// One C-APDU in, the R-APDU and what the trace shows of it.
    pub fn exchange(&mut self, capdu: &[u8]) -> Exchange {
        let mut note = None;
        let (name, response, shown) = match Command::parse(capdu) {
            Ok(cmd) => {
                let name = command_name(&cmd);
                let shown = if hides_pin(&cmd) { 4 } else { capdu.len() };
                (name, self.process(cmd, &mut note), shown)
            }
            Err(sw) => ("?", Response::status(sw), capdu.len()),
        };
        Exchange {
            name,
            command: capdu[..shown].to_vec(),
            hidden: capdu.len() - shown,
            sw: response.sw,
            response: response.to_bytes(),
            note,
        }
    }

    fn process(&mut self, cmd: Command, note: &mut Option<String>) -> Response {
        if !matches!(cmd.cla & !0x10, 0x00 | 0x80) {
            return StatusWord::CLA_NOT_SUPPORTED.into();
        }
        // GET RESPONSE (7816-4 §11.7.1) continues the last answer; anything else drops it.
        if cmd.ins == 0xC0 {
            if (cmd.p1, cmd.p2) != (0, 0) {
                return StatusWord::WRONG_P1P2.into();
            }
            if self.pending.is_empty() {
                return StatusWord::CONDITIONS_NOT_SATISFIED.into();
            }
            let rest = std::mem::take(&mut self.pending);
            return self.answer(rest, cmd.ne.unwrap_or(256));
        }
        self.pending.clear();
        let cmd = match self.chain(cmd) {
            Ok(Some(c)) => c,
            Ok(None) => return Response::ok(Vec::new()),
            Err(sw) => return sw.into(),
        };
        // From here on no command carries the chaining bit (chain() took the parts).
        let result = match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) => self.select(&cmd),
            _ => match self.app {
                Some(App::Piv) => piv::handle(
                    &mut self.door,
                    &mut self.piv,
                    &self.identity.management_key,
                    &cmd,
                    note,
                ),
                Some(App::JaCarta) => jacarta::handle(&mut self.door, &cmd),
                None => Err(StatusWord::INS_NOT_SUPPORTED),
            },
        };
        match result {
            Ok(data) => {
                // No Le yet data to send: answered as if Le were the most a short (or extended)
                // command may ask, as PIV cards do under T=1; yubico-piv-tool relies on it.
                let most = if cmd.extended { 65536 } else { 256 };
                self.answer(data, cmd.ne.unwrap_or(most))
            }
            Err(sw) => sw.into(),
        }
    }

    /// Sends at most `limit` bytes; the rest waits for GET RESPONSE behind `61xx`.
    fn answer(&mut self, mut data: Vec<u8>, limit: usize) -> Response {
        if data.len() <= limit {
            return Response::ok(data);
        }
        self.pending = data.split_off(limit);
        Response {
            data,
            sw: StatusWord::more_data(self.pending.len()),
        }
    }

    /// Command chaining (7816-4 §5.3.3): parts with CLA b5 set are kept; the last part gets the
    /// whole data. A part with another header starts over.
    fn chain(&mut self, cmd: Command) -> Result<Option<Command>, StatusWord> {
        let header = [cmd.cla & !0x10, cmd.ins, cmd.p1, cmd.p2];
        let mut data = match self.chain.take() {
            Some(c) if c.header == header => c.data,
            _ => Vec::new(),
        };
        if data.len() + cmd.data.len() > MAX_CHAIN {
            return Err(StatusWord::NOT_ENOUGH_MEMORY);
        }
        data.extend_from_slice(&cmd.data);
        if cmd.chained() {
            self.chain = Some(Chain { header, data });
            return Ok(None);
        }
        // The last part has no chaining bit, so its class is the chain's.
        Ok(Some(Command { data, ..cmd }))
    }

    /// SELECT by DF name (7816-4 §11.2.2): the PIV AID by any prefix of five bytes or more (SP
    /// 800-73-4 Part 2 §3.1.1), the JaCarta AID whole. An unknown AID leaves the current
    /// application selected.
    fn select(&mut self, cmd: &Command) -> Result<Vec<u8>, StatusWord> {
        if cmd.p1 != 0x04 {
            // No files are exposed, so selecting one by identifier or path finds nothing.
            return if matches!(cmd.p1, 0x00..=0x03 | 0x08 | 0x09) {
                Err(StatusWord::NOT_FOUND)
            } else {
                Err(StatusWord::WRONG_P1P2)
            };
        }
        if !matches!(cmd.p2, 0x00 | 0x04 | 0x0C) {
            return Err(StatusWord::WRONG_P1P2);
        }
        let id = &self.identity;
        let aid = &cmd.data;
        if aid.len() >= 5 && id.piv_aid.starts_with(aid) {
            self.switch_to(App::Piv);
            return Ok(if cmd.p2 == 0x0C {
                Vec::new()
            } else {
                piv::application_property_template(&self.identity.piv_aid)
            });
        }
        if *aid == id.jacarta_aid {
            let fci = crate::tlv::tlv(0x6F, &crate::tlv::tlv(0x84, &id.jacarta_aid));
            self.switch_to(App::JaCarta);
            return Ok(if cmd.p2 == 0x0C { Vec::new() } else { fci });
        }
        Err(StatusWord::NOT_FOUND)
    }

    fn switch_to(&mut self, app: App) {
        if self.app != Some(app) {
            // Another application's security state does not carry over (7816-4 §5.4).
            self.piv = piv::PivState::default();
            self.door.logout();
        }
        self.app = Some(app);
    }
}

/// The PIN-carrying commands, whose data the trace never shows.
fn hides_pin(cmd: &Command) -> bool {
    matches!(cmd.ins, 0x20 | 0x24 | 0x2C) && !cmd.data.is_empty()
}

/// The name of a command for traces.
pub fn command_name(cmd: &Command) -> &'static str {
    match (cmd.cla & !0x10, cmd.ins) {
        (0x80, 0xCB) => "GET CAPABILITY",
        (_, 0xA4) => "SELECT",
        (_, 0xC0) => "GET RESPONSE",
        (_, 0xCB) | (_, 0xCA) => "GET DATA",
        (_, 0x20) => "VERIFY",
        (_, 0x24) => "CHANGE REFERENCE DATA",
        (_, 0x2C) => "RESET RETRY COUNTER",
        (_, 0x87) => "GENERAL AUTHENTICATE",
        (_, 0x47) => "GENERATE ASYMMETRIC KEY PAIR",
        (_, 0xDB) => "PUT DATA",
        (_, piv::INS_YK_VERSION) => "GET VERSION (Yubico)",
        (_, piv::INS_YK_SERIAL) => "GET SERIAL (Yubico)",
        _ => "UNKNOWN",
    }
}
