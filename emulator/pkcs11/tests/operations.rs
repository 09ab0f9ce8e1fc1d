//! How digest and sign operations end (PKCS#11 2.40 §5.2, §5.10, §5.11): a call to `C_Digest`,
//! `C_DigestFinal`, `C_Sign` or `C_SignFinal` always terminates the operation unless it returns
//! `CKR_BUFFER_TOO_SMALL` or is a successful length query; an update that fails terminates it
//! too; `C_Digest`/`C_Sign` cannot finish a multi-part operation, nor `*Final` a single-part one.
//! These are the three findings google/pkcs11test made in kilt's token (issue 13). Calls the
//! exported functions themselves, in one test (one library state per process).

use cryptoki_sys::*;
use kilt_pkcs11::*;
use std::ptr::null_mut;

mod direct;

use direct::mech;

#[test]
fn failed_and_final_calls_end_operations_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    unsafe { operations(&dir) }
}

unsafe fn operations(dir: &tempfile::TempDir) {
    unsafe {
        let h = direct::token_with_user(dir, b"ops");
        let mut sha = mech(CKM_SHA256);
        let mut data = *b"abc";
        let mut out = [0u8; 64];
        let mut len: CK_ULONG = 64;

        // Finding 1: C_Digest with a NULL length pointer fails and ends the operation.
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED,
            "the failed C_Digest ended the operation"
        );
        // … and with NULL data of a non-zero length.
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);
        assert_eq!(
            C_Digest(h, null_mut(), 3, out.as_mut_ptr(), &mut len),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK, "nothing left active");
        // C_DigestFinal likewise; a failed C_DigestUpdate too (§5.10).
        assert_eq!(C_DigestUpdate(h, data.as_mut_ptr(), 3), CKR_OK);
        assert_eq!(
            C_DigestFinal(h, out.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);
        assert_eq!(C_DigestUpdate(h, null_mut(), 3), CKR_ARGUMENTS_BAD);
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);

        // Finding 2: C_Digest cannot finish a multi-part digest.
        assert_eq!(C_DigestUpdate(h, data.as_mut_ptr(), 3), CKR_OK);
        len = 64;
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_ACTIVE
        );
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK, "and it ended it");

        // Finding 3: after a C_Digest length query the operation is single-part.
        len = 0;
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, null_mut(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 32);
        len = 64;
        assert_eq!(
            C_DigestFinal(h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_ACTIVE,
            "C_DigestFinal after a C_Digest length query"
        );
        // Length queries and short buffers still leave the operation active (§5.2).
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);
        len = 0;
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, null_mut(), &mut len),
            CKR_OK
        );
        len = 31;
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        len = 64;
        assert_eq!(
            C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_OK
        );
        assert_eq!(
            hex(&out[..32]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // A multi-part digest: its length query keeps it multi-part.
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);
        assert_eq!(C_DigestUpdate(h, data.as_mut_ptr(), 1), CKR_OK);
        len = 0;
        assert_eq!(C_DigestFinal(h, null_mut(), &mut len), CKR_OK);
        assert_eq!(C_DigestUpdate(h, data.as_mut_ptr().add(1), 2), CKR_OK);
        len = 64;
        assert_eq!(C_DigestFinal(h, out.as_mut_ptr(), &mut len), CKR_OK);
        assert_eq!(
            hex(&out[..32]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );

        // The same rules for signing (§5.11), with a key of the token.
        let mut keygen = mech(CKM_EC_KEY_PAIR_GEN);
        let mut params = [0x06u8, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut pubt = [CK_ATTRIBUTE {
            type_: CKA_EC_PARAMS,
            pValue: params.as_mut_ptr() as *mut _,
            ulValueLen: params.len() as CK_ULONG,
        }];
        let (mut pubk, mut privk) = (0, 0);
        assert_eq!(
            C_GenerateKeyPair(
                h,
                &mut keygen,
                pubt.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut pubk,
                &mut privk
            ),
            CKR_OK
        );
        let mut ecdsa = mech(CKM_ECDSA);
        let mut ecdsa_sha = mech(CKM_ECDSA_SHA256);
        let mut digest = [7u8; 32];
        assert_eq!(C_SignInit(h, &mut ecdsa, privk), CKR_OK);
        assert_eq!(
            C_Sign(h, null_mut(), 32, out.as_mut_ptr(), &mut len),
            CKR_ARGUMENTS_BAD
        );
        len = 64;
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED,
            "a valid C_Sign after the failed one"
        );
        assert_eq!(C_SignInit(h, &mut ecdsa, privk), CKR_OK);
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, out.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_SignInit(h, &mut ecdsa_sha, privk), CKR_OK);
        assert_eq!(C_SignUpdate(h, data.as_mut_ptr(), 3), CKR_OK);
        assert_eq!(
            C_SignFinal(h, out.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_SignInit(h, &mut ecdsa_sha, privk), CKR_OK);
        assert_eq!(C_SignUpdate(h, null_mut(), 3), CKR_ARGUMENTS_BAD);
        assert_eq!(C_SignInit(h, &mut ecdsa_sha, privk), CKR_OK);
        // C_Sign cannot finish a multi-part signature; C_SignFinal not a single-part one.
        assert_eq!(C_SignUpdate(h, data.as_mut_ptr(), 3), CKR_OK);
        len = 0;
        assert_eq!(
            C_Sign(h, data.as_mut_ptr(), 3, null_mut(), &mut len),
            CKR_OPERATION_ACTIVE
        );
        assert_eq!(C_SignInit(h, &mut ecdsa_sha, privk), CKR_OK);
        len = 0;
        assert_eq!(
            C_Sign(h, data.as_mut_ptr(), 3, null_mut(), &mut len),
            CKR_OK
        );
        len = 64;
        assert_eq!(
            C_SignFinal(h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_ACTIVE
        );
        assert_eq!(C_SignInit(h, &mut ecdsa_sha, privk), CKR_OK);
        len = 64;
        assert_eq!(
            C_Sign(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_OK
        );
        // Verify: a call with bad arguments ends it as well (§5.12).
        let mut sig = [0u8; 64];
        assert_eq!(C_VerifyInit(h, &mut ecdsa, pubk), CKR_OK);
        assert_eq!(
            C_Verify(h, null_mut(), 32, sig.as_mut_ptr(), 64),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_VerifyInit(h, &mut ecdsa, pubk), CKR_OK);
        assert_eq!(C_VerifyUpdate(h, null_mut(), 3), CKR_ARGUMENTS_BAD);
        assert_eq!(C_VerifyInit(h, &mut ecdsa_sha, pubk), CKR_OK);
        assert_eq!(C_VerifyFinal(h, null_mut(), 64), CKR_ARGUMENTS_BAD);
        assert_eq!(C_VerifyInit(h, &mut ecdsa_sha, pubk), CKR_OK);
        assert_eq!(
            C_Verify(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), 64),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(C_Finalize(null_mut()), CKR_OK);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
