//! A software authenticator for tests: what a passkey on a phone or a FIDO2 key does, enough
//! to answer the server's WebAuthn challenges without a browser. It makes an ES256 key pair
//! (aws-lc-rs), reports "none" attestation, and signs assertions with a counter it can be told
//! to roll back (to play a cloned key). Tests also use it to send deliberately wrong answers:
//! another origin, user verification missing.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Authenticator-data flags (WebAuthn §6.1).
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_DATA: u8 = 0x40;

pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    /// The signature counter the next answer reports (then raised by one).
    pub counter: u32,
    /// The origin the "browser" claims in client data.
    pub origin: String,
    /// Whether the "authenticator" reports that it verified its user (PIN, biometric).
    pub verify_user: bool,
}

impl std::fmt::Debug for SoftPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftPasskey").field("origin", &self.origin).field("counter", &self.counter).finish()
    }
}

impl SoftPasskey {
    /// A new authenticator used from pages served at `origin`.
    pub fn new(origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("make a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).expect("load the key");
        let credential_id = uuid::Uuid::new_v4().as_bytes().to_vec();
        Self { key, credential_id, counter: 1, origin: origin.to_string(), verify_user: true }
    }

    /// Answer a registration challenge (`options` as the server sent it, with `publicKey`).
    pub fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id in the options");
        let client_data = self.client_data("webauthn.create", pk);
        let mut auth_data = self.auth_data(rp_id, ATTESTED_DATA);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        let id_len = u16::try_from(self.credential_id.len()).expect("short credential id");
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        let attestation = serde_cbor_2::to_vec(&attestation).expect("encode the attestation");
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {"attestationObject": B64.encode(attestation), "clientDataJSON": B64.encode(client_data)},
            "clientExtensionResults": {},
        })
    }

    /// Answer a sign-in or step-up challenge (`options` with `publicKey`).
    pub fn answer(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"].as_str().expect("rpId in the options");
        let client_data = self.client_data("webauthn.get", pk);
        let auth_data = self.auth_data(rp_id, 0);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).expect("sign");
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(auth_data),
                "clientDataJSON": B64.encode(client_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": null,
            },
            "clientExtensionResults": {},
        })
    }

    fn client_data(&self, kind: &str, pk: &Value) -> Vec<u8> {
        let challenge = pk["challenge"].as_str().expect("challenge in the options");
        serde_json::to_vec(&json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false}))
            .expect("client data")
    }

    /// rpIdHash, flags and counter; the counter moves on with each use.
    fn auth_data(&mut self, rp_id: &str, extra_flags: u8) -> Vec<u8> {
        let mut flags = USER_PRESENT | extra_flags;
        if self.verify_user {
            flags |= USER_VERIFIED;
        }
        let mut out = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        out.push(flags);
        out.extend_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        out
    }

    /// The public key as a COSE EC2 key (RFC 9053): kty 2, alg -7 (ES256), crv 1 (P-256), x, y.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let (x, y) = (point[1..33].to_vec(), point[33..65].to_vec());
        let key = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(x)),
            (Cbor::Integer(-3), Cbor::Bytes(y)),
        ]));
        serde_cbor_2::to_vec(&key).expect("encode the key")
    }
}
