//! Erasure certificates: a JSON statement of what was destroyed, signed with the node's audit
//! signing key (Ed25519), so the firm and auditors can check it offline with the public key
//! alone. The file is `{"certificate": {...}, "key_id": "...", "signature": "..."}`; the
//! signature covers the certificate object serialised compactly with its keys in sorted order
//! (how `serde_json` writes a parsed object), so re-indenting the file does not break it but
//! changing any value does.

use super::signing::{AuditPublicKey, AuditSigner};
use crate::error::{Error, Result};
use serde_json::Value;

/// The signature label: what is signed, and its format version.
const LABEL: &str = "portcullis-erasure-certificate-v1";

/// The certificate's own version marker (inside the signed object).
pub const FORMAT: &str = "portcullis-erasure-certificate";
pub const VERSION: u64 = 1;

/// The bytes the signature covers.
fn canonical(body: &Value) -> Result<Vec<u8>> {
    // A round trip through `Value` sorts object keys (serde_json's default map is ordered).
    let v: Value = serde_json::from_value(body.clone()).map_err(Error::internal)?;
    serde_json::to_vec(&sort(v)).map_err(Error::internal)
}

/// `v` with every object's keys in sorted order, whichever map type serde_json was built with.
fn sort(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().map(|(k, v)| (k, sort(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort).collect()),
        other => other,
    }
}

/// Sign a certificate body; the file text to store and hand out.
pub fn sign(signer: &AuditSigner, body: &Value) -> Result<String> {
    let signature = signer.sign_document(LABEL, &canonical(body)?);
    let doc = serde_json::json!({ "certificate": body, "key_id": signer.key_id(), "signature": signature });
    serde_json::to_string_pretty(&doc).map_err(Error::internal)
}

/// Check a certificate file against trusted public keys; its body if one of them signed it.
pub fn verify(text: &str, trusted: &[AuditPublicKey]) -> Result<Value> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| Error::invalid("certificate", format!("not a JSON document ({e})")))?;
    let (Some(body), Some(signature)) = (doc.get("certificate"), doc.get("signature").and_then(Value::as_str)) else {
        return Err(Error::invalid("certificate", "not an erasure certificate (no certificate or signature field)"));
    };
    if body.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(Error::invalid("certificate", "not an erasure certificate (wrong format marker)"));
    }
    if body.get("version").and_then(Value::as_u64) != Some(VERSION) {
        return Err(Error::invalid("certificate", format!("unknown certificate version (this build reads {VERSION})")));
    }
    let bytes = canonical(body)?;
    if trusted.iter().any(|k| k.verifies_document(LABEL, &bytes, signature)) {
        Ok(body.clone())
    } else {
        Err(Error::invalid("certificate", "the signature does not verify with the given public key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_verifies_until_any_value_changes() {
        let signer = AuditSigner::from_pkcs8(&AuditSigner::generate_pkcs8().unwrap()).unwrap();
        let other = AuditSigner::from_pkcs8(&AuditSigner::generate_pkcs8().unwrap()).unwrap();
        let body = serde_json::json!({ "format": FORMAT, "version": VERSION, "tenant_name": "acme",
                                       "destroyed": { "documents": 3, "users": 2 } });
        let text = sign(&signer, &body).unwrap();
        assert_eq!(verify(&text, &[signer.public_key()]).unwrap(), body);
        // Re-indented, still valid.
        let compact = serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        assert!(verify(&compact, &[signer.public_key()]).is_ok());
        assert!(verify(&text, &[other.public_key()]).is_err());
        let altered = text.replace("\"documents\": 3", "\"documents\": 2");
        assert_ne!(altered, text);
        assert!(verify(&altered, &[signer.public_key()]).is_err());
        assert!(verify("{}", &[signer.public_key()]).is_err());
        assert!(verify("not json", &[signer.public_key()]).is_err());
    }
}
