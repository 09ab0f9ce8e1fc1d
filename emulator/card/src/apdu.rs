//! Command and response APDUs (ISO/IEC 7816-4 §5.1–5.2) and status words (§5.6).

use std::fmt;

/// A status word: SW1 SW2. The card's error type; `Debug` prints it in hex as readers do.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}

impl StatusWord {
    // ISO/IEC 7816-4:2020 §5.6, tables 5 and 6.
    pub const OK: StatusWord = StatusWord(0x9000);
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    pub const LAST_COMMAND_EXPECTED: StatusWord = StatusWord(0x6883);
    pub const SECURITY_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    pub const AUTH_BLOCKED: StatusWord = StatusWord(0x6983);
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    pub const NOT_FOUND: StatusWord = StatusWord(0x6A82);
    pub const NOT_ENOUGH_MEMORY: StatusWord = StatusWord(0x6A84);
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6A86);
    pub const REFERENCE_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    pub const EXECUTION_ERROR: StatusWord = StatusWord(0x6400);
    pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord(0x6F00);

    /// `63Cx`: verification failed, `x` tries left (at most 15 can be said).
    pub fn tries_left(n: u32) -> StatusWord {
        StatusWord(0x63C0 + n.min(15) as u16)
    }

    /// `61xx`: `n` more bytes wait for GET RESPONSE (`00` = 256 or more).
    pub fn more_data(n: usize) -> StatusWord {
        StatusWord(0x6100 + if n >= 256 { 0 } else { n as u16 })
    }

    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// What the status word says, for traces and reports.
    pub fn meaning(self) -> String {
        let fixed = match self {
            StatusWord::OK => "success",
            StatusWord::WRONG_LENGTH => "wrong length",
            StatusWord::LAST_COMMAND_EXPECTED => "last command of the chain expected",
            StatusWord::SECURITY_NOT_SATISFIED => "security status not satisfied",
            StatusWord::AUTH_BLOCKED => "authentication method blocked",
            StatusWord::CONDITIONS_NOT_SATISFIED => "conditions of use not satisfied",
            StatusWord::WRONG_DATA => "incorrect parameters in the data field",
            StatusWord::FUNCTION_NOT_SUPPORTED => "function not supported",
            StatusWord::NOT_FOUND => "file or application not found",
            StatusWord::NOT_ENOUGH_MEMORY => "not enough memory space",
            StatusWord::WRONG_P1P2 => "incorrect parameters P1-P2",
            StatusWord::REFERENCE_NOT_FOUND => "referenced data not found",
            StatusWord::INS_NOT_SUPPORTED => "instruction not supported",
            StatusWord::CLA_NOT_SUPPORTED => "class not supported",
            StatusWord::EXECUTION_ERROR => "execution error, state unchanged",
            StatusWord::NO_PRECISE_DIAGNOSIS => "no precise diagnosis",
            StatusWord(sw) if sw & 0xFFF0 == 0x63C0 => {
                return format!("verification failed, {} tries left", sw & 0xF);
            }
            StatusWord(sw) if sw & 0xFF00 == 0x6100 => {
                return format!(
                    "{} more bytes available",
                    if sw & 0xFF == 0 { 256 } else { sw & 0xFF }
                );
            }
            _ => "unknown",
        };
        fixed.to_string()
    }
}

/// A parsed command APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Ne, the most response bytes the reader accepts (`None`: no Le field, so none).
    pub ne: Option<usize>,
    /// Whether Lc/Le were in extended form.
    pub extended: bool,
}

impl Command {
    /// Parses the four cases of ISO/IEC 7816-4 §5.2 in short and extended form. Anything else
    /// is `6700`.
    pub fn parse(b: &[u8]) -> Result<Command, StatusWord> {
        let bad = Err(StatusWord::WRONG_LENGTH);
        if b.len() < 4 {
            return bad;
        }
        let (cla, ins, p1, p2) = (b[0], b[1], b[2], b[3]);
        let body = &b[4..];
        let short_ne = |x: u8| if x == 0 { 256 } else { usize::from(x) };
        let ext_ne = |x: &[u8]| match u16::from_be_bytes([x[0], x[1]]) {
            0 => 65536,
            n => usize::from(n),
        };
        let (data, ne, extended) = match body {
            [] => (&[][..], None, false),
            [le] => (&[][..], Some(short_ne(*le)), false),
            [0, rest @ ..] if rest.len() >= 2 => {
                if rest.len() == 2 {
                    (&[][..], Some(ext_ne(rest)), true)
                } else {
                    let lc = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    let tail = &rest[2..];
                    if lc == 0 || tail.len() < lc {
                        return bad;
                    }
                    match tail.len() - lc {
                        0 => (tail, None, true),
                        2 => (&tail[..lc], Some(ext_ne(&tail[lc..])), true),
                        _ => return bad,
                    }
                }
            }
            [lc, rest @ ..] if *lc != 0 => {
                let lc = usize::from(*lc);
                if rest.len() < lc {
                    return bad;
                }
                match rest.len() - lc {
                    0 => (rest, None, false),
                    1 => (&rest[..lc], Some(short_ne(rest[lc])), false),
                    _ => return bad,
                }
            }
            _ => return bad,
        };
        Ok(Command {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            ne,
            extended,
        })
    }

    /// Encodes the command (short form when it fits, as a reader would send it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        let extended = self.extended || self.data.len() > 255 || self.ne.is_some_and(|n| n > 256);
        if extended {
            out.push(0);
            if !self.data.is_empty() {
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.ne {
                // 65536 is written 00 00 (§5.2), which the truncation gives.
                out.extend_from_slice(&(ne as u16).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.ne {
                // 256 is written 00.
                out.push(ne as u8);
            }
        }
        out
    }

    /// Command chaining: CLA bit b5 (ISO/IEC 7816-4 §5.4.1) says more of this command follows.
    pub fn chained(&self) -> bool {
        self.cla & 0x10 != 0
    }
}

/// A response APDU: data, then the status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Response {
    pub fn ok(data: Vec<u8>) -> Response {
        Response {
            data,
            sw: StatusWord::OK,
        }
    }

    pub fn status(sw: StatusWord) -> Response {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.0.to_be_bytes());
        out
    }
}

impl From<StatusWord> for Response {
    fn from(sw: StatusWord) -> Response {
        Response::status(sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_cases_short_and_extended() {
        let c1 = Command::parse(&[0, 0xA4, 4, 0]).unwrap();
        assert_eq!((c1.data.len(), c1.ne), (0, None));
        let c2 = Command::parse(&[0, 0xCA, 0, 0, 0]).unwrap();
        assert_eq!(c2.ne, Some(256));
        let c3 = Command::parse(&[0, 0x20, 0, 0x80, 2, 1, 2]).unwrap();
        assert_eq!((c3.data, c3.ne), (vec![1, 2], None));
        let c4 = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 1, 7, 0x10]).unwrap();
        assert_eq!((c4.data, c4.ne), (vec![7], Some(16)));
        let e2 = Command::parse(&[0, 0xCA, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((e2.ne, e2.extended), (Some(65536), true));
        let e3 = Command::parse(&[0, 0xDB, 0, 0, 0, 0, 2, 5, 6]).unwrap();
        assert_eq!((e3.data, e3.ne), (vec![5, 6], None));
        let e4 = Command::parse(&[0, 0xDB, 0, 0, 0, 0, 1, 5, 0x01, 0x00]).unwrap();
        assert_eq!((e4.data, e4.ne), (vec![5], Some(256)));
    }

    #[test]
    fn inconsistent_lengths_are_6700() {
        for b in [
            &[0u8, 1, 2][..],
            &[0, 0x20, 0, 0x80, 3, 1, 2],
            &[0, 0x20, 0, 0x80, 1, 1, 2, 3],
            &[0, 0x20, 0, 0x80, 0, 0],
            &[0, 0x20, 0, 0x80, 0, 0, 0, 1],
            &[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2, 3],
        ] {
            assert_eq!(Command::parse(b), Err(StatusWord::WRONG_LENGTH), "{b:02X?}");
        }
    }

    #[test]
    fn status_words_say_what_they_mean() {
        assert_eq!(StatusWord::tries_left(9), StatusWord(0x63C9));
        assert_eq!(StatusWord::tries_left(99), StatusWord(0x63CF));
        assert_eq!(StatusWord::more_data(300), StatusWord(0x6100));
        assert_eq!(StatusWord::more_data(17), StatusWord(0x6111));
        assert!(StatusWord(0x63C2).meaning().contains("2 tries left"));
        assert_eq!(StatusWord(0x6110).meaning(), "16 more bytes available");
        assert_eq!(StatusWord(0x6100).meaning(), "256 more bytes available");
        assert_eq!(format!("{:?}", StatusWord::NOT_FOUND), "6A82");
        assert_eq!(
            StatusWord::NOT_FOUND.to_string(),
            "6A82 (file or application not found)"
        );
        assert_eq!(
            (StatusWord(0x61AB).sw1(), StatusWord(0x61AB).sw2()),
            (0x61, 0xAB)
        );
        assert_eq!(StatusWord(0x1234).meaning(), "unknown");
    }

    #[test]
    fn every_named_status_word_has_its_own_meaning() {
        let named = [
            StatusWord::OK,
            StatusWord::WRONG_LENGTH,
            StatusWord::LAST_COMMAND_EXPECTED,
            StatusWord::SECURITY_NOT_SATISFIED,
            StatusWord::AUTH_BLOCKED,
            StatusWord::CONDITIONS_NOT_SATISFIED,
            StatusWord::WRONG_DATA,
            StatusWord::FUNCTION_NOT_SUPPORTED,
            StatusWord::NOT_FOUND,
            StatusWord::NOT_ENOUGH_MEMORY,
            StatusWord::WRONG_P1P2,
            StatusWord::REFERENCE_NOT_FOUND,
            StatusWord::INS_NOT_SUPPORTED,
            StatusWord::CLA_NOT_SUPPORTED,
            StatusWord::EXECUTION_ERROR,
            StatusWord::NO_PRECISE_DIAGNOSIS,
        ];
        let meanings: std::collections::HashSet<String> =
            named.iter().map(|sw| sw.meaning()).collect();
        assert_eq!(meanings.len(), named.len());
        assert!(!meanings.contains("unknown"));
    }

    #[test]
    fn commands_encode_as_readers_send_them() {
        for bytes in [
            vec![0x00, 0xA4, 0x04, 0x00],
            vec![0x00, 0xCA, 0x00, 0x00, 0x00],
            vec![0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32],
            vec![0x00, 0xCB, 0x3F, 0xFF, 0x01, 0x07, 0x10],
            vec![0x00, 0xDB, 0x3F, 0xFF, 0x00, 0x01, 0x2C]
                .into_iter()
                .chain(std::iter::repeat_n(0xAA, 300))
                .collect(),
            vec![0x00, 0xCA, 0x00, 0x00, 0x00, 0x00, 0x00],
            [vec![0x00, 0xDB, 0x3F, 0xFF, 0xFF], vec![0x55; 255]].concat(),
        ] {
            assert_eq!(Command::parse(&bytes).unwrap().to_bytes(), bytes);
        }
        let chained = Command::parse(&[0x10, 0xDB, 0x3F, 0xFF, 0x01, 0x00]).unwrap();
        assert!(chained.chained());
        assert!(
            !Command::parse(&[0x00, 0xDB, 0x3F, 0xFF, 0x01, 0x00])
                .unwrap()
                .chained()
        );
        assert_eq!(Response::ok(vec![1, 2]).to_bytes(), [1, 2, 0x90, 0x00]);
    }
}
