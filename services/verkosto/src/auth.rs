//! Choosing how tokens are verified: dev keys or the identity provider's JWKS.

use verkosto_auth::{DevIssuer, Verifier};

use crate::config::ServeArgs;

pub fn verifier(args: &ServeArgs) -> anyhow::Result<(Verifier, Option<DevIssuer>)> {
    if args.dev_auth_on() {
        let (verifier, issuer) = match &args.dev_key_seed {
            Some(hex_seed) => {
                let seed = parse_seed(hex_seed)?;
                Verifier::dev_from_seed(&seed)
            }
            None => Verifier::dev(),
        };
        tracing::warn!("dev auth is on: anyone can get a token at /api/v1/dev/token");
        return Ok((verifier, Some(issuer)));
    }
    let url = args.jwks_url.clone().ok_or_else(|| {
        anyhow::anyhow!("dev auth is off: --jwks-url and --jwt-issuer are required")
    })?;
    let issuer = args
        .jwt_issuer
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--jwt-issuer is required with --jwks-url"))?;
    let algorithms = args
        .jwt_algorithms
        .iter()
        .map(|a| a.trim().parse::<verkosto_auth::Algorithm>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--jwt-algorithms: {e}"))?;
    Ok((
        Verifier::jwks(url, issuer, args.jwt_audience.clone(), algorithms),
        None,
    ))
}

fn parse_seed(hex_seed: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = (0..hex_seed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex_seed.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| anyhow::anyhow!("--dev-key-seed must be 64 hex digits"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("--dev-key-seed must be 64 hex digits"))
}
