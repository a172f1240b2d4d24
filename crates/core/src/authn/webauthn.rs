//! WebAuthn (passkeys and FIDO2 security keys) as a second factor, over `webauthn-rs`.
//!
//! We use the crate's passkey ceremonies, which require user verification (a PIN or biometric
//! on the authenticator) at registration and at every use: the authenticator is then a factor
//! in its own right, not just "someone touched a key". Attestation is not required (`none` is
//! accepted), as browsers send for passkeys.
//!
//! The relying-party id is the host of the public URL. WebAuthn needs a domain name: browsers
//! and the crate refuse IP addresses. A server reached on a loopback address (development,
//! tests) uses `localhost`, which every browser treats as a secure origin; any other IP address
//! leaves passkeys unavailable until `public_url` names the server by domain.

use crate::error::{Error, Result};
use url::{Host, Url};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration,
    RequestChallengeResponse, Webauthn, WebauthnBuilder, WebauthnError,
};

pub use webauthn_rs::prelude::{AuthenticationResult, Passkey as StoredPasskey};
/// The browser's answers, as clients send them (JSON, base64url fields).
pub use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

/// A challenge for the client to pass to `navigator.credentials.create` or `.get` (`options`
/// is webauthn-rs's JSON, whose `publicKey` member `PublicKeyCredential.parse*OptionsFromJSON`
/// takes), and the id to send back with the answer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PasskeyChallenge {
    pub challenge_id: String,
    pub options: serde_json::Value,
}

/// The relying party: this server, as browsers and authenticators know it.
#[derive(Debug)]
pub struct Passkeys {
    webauthn: Webauthn,
    rp_id: String,
}

/// Why passkeys are off, for the error users and the start-up log see.
pub const IP_HOST_REASON: &str =
    "passkeys need the server to be reached by a domain name: set public_url to an https URL with a host name";

impl Passkeys {
    /// The relying party for `public_url`, or the reason there can be none.
    pub fn for_public_url(public_url: &str) -> std::result::Result<Self, String> {
        let url = Url::parse(public_url).map_err(|e| format!("public_url is not a URL: {e}"))?;
        let (rp_id, origin) = match url.host() {
            Some(Host::Domain(d)) => (d.to_ascii_lowercase(), url.clone()),
            Some(Host::Ipv4(ip)) if ip.is_loopback() => ("localhost".to_string(), localhost(&url)?),
            Some(Host::Ipv6(ip)) if ip.is_loopback() => ("localhost".to_string(), localhost(&url)?),
            _ => return Err(IP_HOST_REASON.to_string()),
        };
        if url.scheme() != "https" && rp_id != "localhost" {
            return Err("passkeys need public_url to be an https URL".to_string());
        }
        let builder = WebauthnBuilder::new(&rp_id, &origin).map_err(|e| format!("passkeys: {e}"))?;
        // On loopback the port is whatever the developer or test chose; elsewhere it is fixed.
        let webauthn = builder
            .rp_name("Portcullis")
            .allow_any_port(rp_id == "localhost")
            .build()
            .map_err(|e| format!("passkeys: {e}"))?;
        Ok(Self { webauthn, rp_id })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Options for the browser to create a credential, and the state to keep until it answers.
    /// `exclude` lists the user's existing credentials, so one authenticator is not added twice.
    pub fn start_registration(
        &self,
        user_handle: Uuid,
        account: &str,
        display_name: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration)> {
        let exclude = (!exclude.is_empty()).then_some(exclude);
        self.webauthn.start_passkey_registration(user_handle, account, display_name, exclude).map_err(refused)
    }

    pub fn finish_registration(
        &self,
        reply: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey> {
        self.webauthn.finish_passkey_registration(reply, state).map_err(refused)
    }

    /// A challenge that any of `creds` can answer.
    pub fn start_authentication(&self, creds: &[Passkey]) -> Result<(RequestChallengeResponse, PasskeyAuthentication)> {
        self.webauthn.start_passkey_authentication(creds).map_err(refused)
    }

    /// Check an answer: signature, challenge, origin, user verification and the signature
    /// counter (a counter that goes backwards suggests a cloned authenticator and is refused).
    pub fn finish_authentication(
        &self,
        reply: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> std::result::Result<AuthenticationResult, WebauthnError> {
        self.webauthn.finish_passkey_authentication(reply, state)
    }
}

/// A credential's id as stored and compared: base64url without padding, as browsers show it.
pub fn credential_id(p: &Passkey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.cred_id())
}

/// The same origin as `url` with the host `localhost`.
fn localhost(url: &Url) -> std::result::Result<Url, String> {
    let mut u = url.clone();
    u.set_host(Some("localhost")).map_err(|e| format!("public_url: {e}"))?;
    Ok(u)
}

/// A ceremony the authenticator or browser got wrong: the user can try again.
fn refused(e: WebauthnError) -> Error {
    Error::invalid("credential", format!("the authenticator's answer was not accepted ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_follows_the_public_url() {
        assert_eq!(Passkeys::for_public_url("https://portal.firm.example").unwrap().rp_id(), "portal.firm.example");
        assert_eq!(Passkeys::for_public_url("https://127.0.0.1:8443").unwrap().rp_id(), "localhost");
        assert_eq!(Passkeys::for_public_url("https://[::1]:8443").unwrap().rp_id(), "localhost");
        assert_eq!(Passkeys::for_public_url("https://10.1.2.3").unwrap_err(), IP_HOST_REASON);
        assert!(Passkeys::for_public_url("http://portal.firm.example").is_err());
    }
}
