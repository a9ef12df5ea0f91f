//! The mock's signing keys: RS256 JWTs and Entra-shaped JWKS.

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// One RSA key with its `kid`.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pair: KeyPair,
    n: String,
    e: String,
    n_raw: Vec<u8>,
    e_raw: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(crate) fn generate() -> Self {
        // Key generation only fails if the system RNG does; a test cannot go on without it.
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation failed");
        let public = pair.public_key();
        let n_raw = public.modulus().big_endian_without_leading_zero().to_vec();
        let e_raw = public.exponent().big_endian_without_leading_zero().to_vec();
        let n = URL_SAFE_NO_PAD.encode(&n_raw);
        let e = URL_SAFE_NO_PAD.encode(&e_raw);
        let kid = URL_SAFE_NO_PAD.encode(&uuid::Uuid::new_v4().as_bytes()[..12]);
        Self {
            kid,
            pair,
            n,
            e,
            n_raw,
            e_raw,
        }
    }

    /// A compact RS256 JWS of `claims` with this key's `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        self.sign_with_header(&header, claims)
    }

    /// A compact JWS with any header (attack tests forge headers), signed RS256.
    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        crate::jwt::sign(header, claims, &self.pair, crate::jwt::RsaAlg::Rs256)
            .expect("RSA signing failed")
    }

    /// Whether `signature` is this key's RS256 signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        crate::jwt::verify_rs256(&self.n_raw, &self.e_raw, message, signature)
    }

    /// The key as Entra publishes it: `kty`, `use`, `kid`, `n`, `e`, `issuer`, and no `alg`.
    pub(crate) fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "issuer": issuer,
        })
    }
}
