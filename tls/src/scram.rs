//! SASL/SCRAM-SHA-512 (RFC 5802 with SHA-512), as Kafka's listeners speak
//! it: the credential kept in the metadata quorum (salted, never the
//! password) and the server side of the two-round exchange.
//!
//! ```text
//! password ─PBKDF2(salt, i)─▶ SaltedPassword ─HMAC "Client Key"─▶ ClientKey ─H─▶ StoredKey
//!                                         └──HMAC "Server Key"─▶ ServerKey
//! client-first  n,,n=user,r=cnonce          ─▶ server-first  r=cnonce+snonce,s=salt,i=4096
//! client-final  c=biws,r=…,p=ClientProof    ─▶ server-final  v=ServerSignature
//! ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage): the server
//! recovers ClientKey and checks H(ClientKey) = StoredKey.
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SecureRandom;
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

use crate::error::TlsError;

/// The one mechanism kmon offers (Kafka's strongest SCRAM).
pub const MECHANISM: &str = "SCRAM-SHA-512";
/// Kafka refuses fewer iterations than this, and uses it by default.
pub const MIN_ITERATIONS: u32 = 4096;
/// Kafka's upper bound on iterations.
pub const MAX_ITERATIONS: u32 = 16384;

/// What the quorum keeps for a user: enough to verify a proof and to prove
/// the server knows it, not enough to log in as the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// A credential for `password` with a fresh random salt.
    pub fn generate(password: &str, iterations: u32) -> Result<ScramCredential, TlsError> {
        let mut salt = vec![0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| scram("no random bytes for a salt"))?;
        let salted = salted_password(password.as_bytes(), &salt, iterations)?;
        ScramCredential::from_salted_password(&salted, salt, iterations)
    }

    /// The credential from the salted password (what Kafka's
    /// AlterUserScramCredentials carries, so the password never travels).
    pub fn from_salted_password(salted: &[u8], salt: Vec<u8>, iterations: u32) -> Result<ScramCredential, TlsError> {
        check_iterations(iterations)?;
        if salt.is_empty() {
            return Err(scram("the salt is empty"));
        }
        if salted.len() != digest::SHA512_OUTPUT_LEN {
            return Err(scram(&format!(
                "a salted password has {} bytes, not {}",
                digest::SHA512_OUTPUT_LEN,
                salted.len()
            )));
        }
        let stored_key = digest::digest(&digest::SHA512, &mac(salted, b"Client Key")).as_ref().to_vec();
        let server_key = mac(salted, b"Server Key");
        Ok(ScramCredential { salt, iterations, stored_key, server_key })
    }
}

fn check_iterations(iterations: u32) -> Result<(), TlsError> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(scram(&format!("iterations must be {MIN_ITERATIONS}..={MAX_ITERATIONS}, not {iterations}")));
    }
    Ok(())
}

/// PBKDF2-HMAC-SHA-512 of the password: what a client derives locally.
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Result<Vec<u8>, TlsError> {
    check_iterations(iterations)?;
    let rounds = std::num::NonZeroU32::new(iterations).ok_or_else(|| scram("zero iterations"))?;
    let mut out = vec![0u8; digest::SHA512_OUTPUT_LEN];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA512, rounds, salt, password, &mut out);
    Ok(out)
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, key), data).as_ref().to_vec()
}

fn scram(message: &str) -> TlsError {
    TlsError::Scram(message.to_string())
}

/// Kafka's answer to any failed exchange: it does not say whether the
/// user or the password was wrong.
fn bad_credentials() -> TlsError {
    scram("authentication failed: invalid credentials")
}

/// The server side of one exchange on one connection.
#[derive(Debug, Default)]
pub struct ScramServer {
    step: Step,
}

#[derive(Debug, Default)]
enum Step {
    #[default]
    ClientFirst,
    ClientFinal {
        user: String,
        credential: Box<ScramCredential>,
        nonce: String,
        /// base64 of the GS2 header: what `c=` must be (no channel binding).
        channel_binding: String,
        /// client-first-bare "," server-first: the start of AuthMessage.
        auth_start: String,
    },
    Done,
}

impl ScramServer {
    pub fn new() -> ScramServer {
        ScramServer::default()
    }

    /// Whether the next message is the client-first one.
    pub fn is_at_first_message(&self) -> bool {
        matches!(self.step, Step::ClientFirst)
    }

    /// Reads the client-first message, looks the user up and answers with
    /// the server-first message. An unknown user fails here.
    pub fn client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, TlsError> {
        if !matches!(self.step, Step::ClientFirst) {
            return Err(scram("client-first message out of order"));
        }
        self.step = Step::Done;
        let text = std::str::from_utf8(message).map_err(|_| scram("client-first message is not UTF-8"))?;
        let (gs2, bare) = split_gs2(text)?;
        let mut user = None;
        let mut client_nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", name)) => user = Some(decode_saslname(name)?),
                Some(("r", nonce)) => client_nonce = Some(nonce),
                Some(("m", _)) => return Err(scram("mandatory extensions are not supported")),
                _ => {}
            }
        }
        let user = user.ok_or_else(|| scram("client-first message has no user name (n=)"))?;
        let client_nonce = client_nonce.filter(|n| !n.is_empty()).ok_or_else(|| scram("client-first has no nonce"))?;
        if let Some(authzid) = gs2.strip_prefix("a=")
            && !authzid.is_empty()
            && decode_saslname(authzid)? != user
        {
            return Err(scram("an authorization id other than the user name is not supported"));
        }
        let credential = lookup(&user).ok_or_else(bad_credentials)?;
        let mut random = [0u8; 24];
        ring::rand::SystemRandom::new().fill(&mut random).map_err(|_| scram("no random bytes for a nonce"))?;
        let nonce = format!("{client_nonce}{}", B64.encode(random));
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        let auth_start = format!("{bare},{server_first}");
        let channel_binding = B64.encode(&text[..text.len() - bare.len()]);
        self.step = Step::ClientFinal { user, credential: Box::new(credential), nonce, channel_binding, auth_start };
        Ok(server_first.into_bytes())
    }

    /// Checks the client-final message's proof; on success the
    /// authenticated user and the server-final message (the server's
    /// signature, proving it holds the credential too).
    pub fn client_final(&mut self, message: &[u8]) -> Result<(String, Vec<u8>), TlsError> {
        let Step::ClientFinal { user, credential, nonce, channel_binding: expected_binding, auth_start } =
            std::mem::replace(&mut self.step, Step::Done)
        else {
            return Err(scram("client-final message out of order"));
        };
        let text = std::str::from_utf8(message).map_err(|_| scram("client-final message is not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| scram("client-final has no proof (p=)"))?;
        let mut channel_binding = None;
        let mut final_nonce = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", value)) => channel_binding = Some(value),
                Some(("r", value)) => final_nonce = Some(value),
                _ => {}
            }
        }
        // "biws" is base64 of "n,,": no channel binding, no authzid.
        if channel_binding != Some(expected_binding.as_str()) {
            return Err(scram("client-final's channel binding (c=) does not repeat the GS2 header"));
        }
        if final_nonce != Some(nonce.as_str()) {
            return Err(scram("client-final nonce does not match"));
        }
        let proof = B64.decode(proof).map_err(|_| scram("client proof is not base64"))?;
        let auth_message = format!("{auth_start},{without_proof}");
        let client_signature = mac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(bad_credentials());
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        let stored = digest::digest(&digest::SHA512, &client_key);
        if !constant_time_eq(stored.as_ref(), &credential.stored_key) {
            return Err(bad_credentials());
        }
        let server_signature = mac(&credential.server_key, auth_message.as_bytes());
        Ok((user, format!("v={}", B64.encode(server_signature)).into_bytes()))
    }
}

/// `gs2-header` and `client-first-message-bare` of a client-first message.
fn split_gs2(text: &str) -> Result<(&str, &str), TlsError> {
    let (flag, rest) = text.split_once(',').ok_or_else(|| scram("client-first message has no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => return Err(scram("channel binding is not supported")),
        _ => return Err(scram("client-first message has a bad GS2 header")),
    }
    let (authzid, bare) = rest.split_once(',').ok_or_else(|| scram("client-first message has no GS2 header"))?;
    Ok((authzid, bare))
}

/// RFC 5802's saslname: `=2C` is `,` and `=3D` is `=`.
fn decode_saslname(name: &str) -> Result<String, TlsError> {
    let decoded = name.replace("=2C", ",").replace("=3D", "=");
    if decoded.is_empty() || name.replace("=2C", "").replace("=3D", "").contains('=') {
        return Err(scram("bad user name in the SCRAM message"));
    }
    Ok(decoded)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client side, for kmon's own tools and the tests: one exchange.
#[derive(Debug)]
pub struct ScramClient {
    user: String,
    password: String,
    nonce: String,
}

impl ScramClient {
    pub fn new(user: &str, password: &str) -> Result<ScramClient, TlsError> {
        let mut random = [0u8; 24];
        ring::rand::SystemRandom::new().fill(&mut random).map_err(|_| scram("no random bytes for a nonce"))?;
        Ok(ScramClient { user: user.to_string(), password: password.to_string(), nonce: B64.encode(random) })
    }

    fn bare(&self) -> String {
        format!("n={},r={}", self.user.replace('=', "=3D").replace(',', "=2C"), self.nonce)
    }

    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare()).into_bytes()
    }

    /// The client-final message for the server-first one.
    pub fn client_final(&self, server_first: &[u8]) -> Result<Vec<u8>, TlsError> {
        let text = std::str::from_utf8(server_first).map_err(|_| scram("server-first message is not UTF-8"))?;
        let field = |key: &str| {
            text.split(',').find_map(|a| a.strip_prefix(key)).ok_or_else(|| scram(&format!("server-first lacks {key}")))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) {
            return Err(scram("the server's nonce does not extend ours"));
        }
        let salt = B64.decode(field("s=")?).map_err(|_| scram("the salt is not base64"))?;
        let iterations: u32 = field("i=")?.parse().map_err(|_| scram("bad iteration count"))?;
        let salted = salted_password(self.password.as_bytes(), &salt, iterations)?;
        let client_key = mac(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA512, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.bare());
        let signature = mac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(password: &str, stored: &ScramCredential) -> Result<String, TlsError> {
        let client = ScramClient::new("alice", password)?;
        let mut server = ScramServer::new();
        let server_first = server.client_first(&client.client_first(), |user| {
            assert_eq!(user, "alice");
            Some(stored.clone())
        })?;
        let client_final = client.client_final(&server_first)?;
        let (user, server_final) = server.client_final(&client_final)?;
        assert!(server_final.starts_with(b"v="));
        Ok(user)
    }

    #[test]
    fn the_right_password_authenticates_and_a_wrong_one_does_not() {
        let credential = ScramCredential::generate("s3cret", MIN_ITERATIONS).unwrap();
        assert_eq!(exchange("s3cret", &credential).unwrap(), "alice");
        let err = exchange("guess", &credential).unwrap_err().to_string();
        assert!(err.contains("invalid credentials"), "{err}");
    }

    #[test]
    fn the_credential_keeps_no_password_and_derives_the_same_keys_from_the_salted_one() {
        let credential = ScramCredential::generate("s3cret", MIN_ITERATIONS).unwrap();
        let salted = salted_password(b"s3cret", &credential.salt, credential.iterations).unwrap();
        let again = ScramCredential::from_salted_password(&salted, credential.salt.clone(), credential.iterations);
        assert_eq!(again.unwrap(), credential);
        assert!(!credential.stored_key.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn unknown_users_bad_messages_and_bad_iterations_are_refused_with_a_reason() {
        let mut server = ScramServer::new();
        let err = server.client_first(b"n,,n=bob,r=abc", |_| None).unwrap_err().to_string();
        assert!(err.contains("invalid credentials"), "{err}");
        let mut server = ScramServer::new();
        let err = server.client_first(b"p=tls-unique,,n=bob,r=abc", |_| None).unwrap_err().to_string();
        assert!(err.contains("channel binding"), "{err}");
        let mut server = ScramServer::new();
        let err = server.client_first(b"n,,r=abc", |_| None).unwrap_err().to_string();
        assert!(err.contains("no user name"), "{err}");
        let err = ScramCredential::generate("x", 10).unwrap_err().to_string();
        assert!(err.contains("iterations must be 4096..=16384"), "{err}");
        let mut server = ScramServer::new();
        let err = server.client_final(b"c=biws,r=x,p=AAAA").unwrap_err().to_string();
        assert!(err.contains("out of order"), "{err}");
    }

    #[test]
    fn a_replayed_final_message_with_another_nonce_fails() {
        let credential = ScramCredential::generate("pw", MIN_ITERATIONS).unwrap();
        let client = ScramClient::new("alice", "pw").unwrap();
        let mut first = ScramServer::new();
        let server_first = first.client_first(&client.client_first(), |_| Some(credential.clone())).unwrap();
        let client_final = client.client_final(&server_first).unwrap();
        // A second connection gets another server nonce: the recorded
        // final message does not fit it.
        let mut second = ScramServer::new();
        second.client_first(&client.client_first(), |_| Some(credential.clone())).unwrap();
        let err = second.client_final(&client_final).unwrap_err().to_string();
        assert!(err.contains("nonce does not match"), "{err}");
    }
}
