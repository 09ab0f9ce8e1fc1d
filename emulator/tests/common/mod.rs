//! What the emulator's API tests share.
#![allow(dead_code)]

use cryptoki_sys::CK_ATTRIBUTE_TYPE;
use kilt_emulator::{AttrResult, Emulator, ObjectHandle, SessionHandle};

/// The value of one readable attribute (a sensitive or missing one fails the test).
pub fn attr(emu: &Emulator, h: SessionHandle, o: ObjectHandle, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    match emu.get_attributes(h, o, &[ty]).unwrap().remove(0) {
        AttrResult::Value(v) => v,
        other => panic!("attribute {ty:#x}: {other:?}"),
    }
}
