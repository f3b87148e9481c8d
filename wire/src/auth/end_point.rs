//! `tls-server-end-point` channel binding data (RFC 5929 section 4.1): the hash of the
//! server's DER certificate, with the hash of the certificate's own signature algorithm,
//! except that MD5 and SHA-1 are replaced by SHA-256.
//!
//! Only the outer `signatureAlgorithm` of the certificate is needed, so this reads just enough
//! DER to reach it (no X.509 library): `Certificate ::= SEQUENCE { tbsCertificate,
//! signatureAlgorithm AlgorithmIdentifier, signatureValue }`.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use std::fmt;

/// The hash a certificate's channel binding uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// Why no binding data could be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPointError {
    /// The certificate is not the DER we expect.
    Malformed(&'static str),
    /// A signature algorithm with no single hash RFC 5929 can use (RSASSA-PSS, Ed25519...):
    /// PostgreSQL cannot bind to it either.
    UnsupportedAlgorithm(Vec<u8>),
}

impl fmt::Display for EndPointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndPointError::Malformed(what) => {
                write!(f, "the server certificate is not valid DER: {what}")
            }
            EndPointError::UnsupportedAlgorithm(oid) => write!(
                f,
                "the server certificate's signature algorithm (OID bytes {oid:02x?}) has no hash for tls-server-end-point channel binding"
            ),
        }
    }
}

impl std::error::Error for EndPointError {}

// DER contents of the signature algorithm OIDs.
const RSA_PREFIX: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
const ECDSA_SHA1: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]; // 1.2.840.10045.4.1
const ECDSA_SHA2_PREFIX: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03]; // 1.2.840.10045.4.3
const DSA_SHA1: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03]; // 1.2.840.10040.4.3
const DSA_SHA2_PREFIX: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03]; // 2.16.840.1.101.3.4.3

/// The hash for a signature algorithm OID (its DER contents), per RFC 5929.
pub fn hash_for_signature_oid(oid: &[u8]) -> Option<EndPointHash> {
    let last = |prefix: &[u8]| {
        (oid.len() == prefix.len() + 1 && oid.starts_with(prefix)).then(|| oid[prefix.len()])
    };
    if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        return Some(EndPointHash::Sha256);
    }
    if let Some(n) = last(&RSA_PREFIX) {
        return match n {
            // md5WithRSA, sha1WithRSA: RFC 5929 says SHA-256.
            0x04 | 0x05 => Some(EndPointHash::Sha256),
            0x0b => Some(EndPointHash::Sha256),
            0x0c => Some(EndPointHash::Sha384),
            0x0d => Some(EndPointHash::Sha512),
            0x0e => Some(EndPointHash::Sha224),
            _ => None, // 0x0a is RSASSA-PSS: the hash is in the parameters.
        };
    }
    if let Some(n) = last(&ECDSA_SHA2_PREFIX) {
        return match n {
            1 => Some(EndPointHash::Sha224),
            2 => Some(EndPointHash::Sha256),
            3 => Some(EndPointHash::Sha384),
            4 => Some(EndPointHash::Sha512),
            _ => None,
        };
    }
    if let Some(n) = last(&DSA_SHA2_PREFIX) {
        return match n {
            1 => Some(EndPointHash::Sha224),
            2 => Some(EndPointHash::Sha256),
            _ => None,
        };
    }
    None
}

/// The `tls-server-end-point` binding data of a DER certificate.
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, EndPointError> {
    let oid = signature_algorithm_oid(cert_der)?;
    let hash = hash_for_signature_oid(oid)
        .ok_or_else(|| EndPointError::UnsupportedAlgorithm(oid.to_vec()))?;
    Ok(match hash {
        EndPointHash::Sha224 => Sha224::digest(cert_der).to_vec(),
        EndPointHash::Sha256 => Sha256::digest(cert_der).to_vec(),
        EndPointHash::Sha384 => Sha384::digest(cert_der).to_vec(),
        EndPointHash::Sha512 => Sha512::digest(cert_der).to_vec(),
    })
}

/// The OID contents of the certificate's outer `signatureAlgorithm`.
pub fn signature_algorithm_oid(cert_der: &[u8]) -> Result<&[u8], EndPointError> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (cert, _) = der_element(cert_der, SEQUENCE)?;
    let (_tbs, rest) = der_element(cert, SEQUENCE)?;
    let (algorithm, _) = der_element(rest, SEQUENCE)?;
    let (oid, _) = der_element(algorithm, OID)?;
    Ok(oid)
}

/// Splits one DER element with the expected tag off `input`: (its contents, what follows).
fn der_element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), EndPointError> {
    let (&t, rest) = input
        .split_first()
        .ok_or(EndPointError::Malformed("truncated"))?;
    if t != tag {
        return Err(EndPointError::Malformed("unexpected tag"));
    }
    let (&first, rest) = rest
        .split_first()
        .ok_or(EndPointError::Malformed("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(EndPointError::Malformed("bad length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(EndPointError::Malformed("length past the end"));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate-shaped DER: SEQUENCE { SEQUENCE { tbs }, SEQUENCE { OID }, BIT STRING }.
    fn cert_with(oid: &[u8], tbs_len: usize) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 0x80 {
                v.push(body.len() as u8);
            } else {
                v.push(0x82);
                v.extend_from_slice(&(body.len() as u16).to_be_bytes());
            }
            v.extend_from_slice(body);
            v
        }
        let tbs = tlv(0x30, &vec![0x05; tbs_len]);
        let alg = tlv(0x30, &[tlv(0x06, oid), vec![0x05, 0x00]].concat());
        let sig = tlv(0x03, &[0x00, 0xaa]);
        tlv(0x30, &[tbs, alg, sig].concat())
    }

    fn rsa(n: u8) -> Vec<u8> {
        [&RSA_PREFIX[..], &[n]].concat()
    }

    #[test]
    fn md5_and_sha1_signatures_bind_with_sha256() {
        for oid in [rsa(0x04), rsa(0x05), ECDSA_SHA1.to_vec(), DSA_SHA1.to_vec()] {
            assert_eq!(hash_for_signature_oid(&oid), Some(EndPointHash::Sha256));
        }
    }

    #[test]
    fn sha2_signatures_bind_with_their_own_hash() {
        assert_eq!(
            hash_for_signature_oid(&rsa(0x0b)),
            Some(EndPointHash::Sha256)
        );
        assert_eq!(
            hash_for_signature_oid(&rsa(0x0c)),
            Some(EndPointHash::Sha384)
        );
        assert_eq!(
            hash_for_signature_oid(&rsa(0x0d)),
            Some(EndPointHash::Sha512)
        );
        assert_eq!(
            hash_for_signature_oid(&rsa(0x0e)),
            Some(EndPointHash::Sha224)
        );
        let ecdsa = |n: u8| [&ECDSA_SHA2_PREFIX[..], &[n]].concat();
        assert_eq!(
            hash_for_signature_oid(&ecdsa(2)),
            Some(EndPointHash::Sha256)
        );
        assert_eq!(
            hash_for_signature_oid(&ecdsa(3)),
            Some(EndPointHash::Sha384)
        );
        assert_eq!(
            hash_for_signature_oid(&ecdsa(4)),
            Some(EndPointHash::Sha512)
        );
    }

    #[test]
    fn pss_and_ed25519_have_no_binding_hash() {
        assert_eq!(hash_for_signature_oid(&rsa(0x0a)), None);
        assert_eq!(hash_for_signature_oid(&[0x2b, 0x65, 0x70]), None); // 1.3.101.112
        assert!(matches!(
            tls_server_end_point(&cert_with(&[0x2b, 0x65, 0x70], 3)),
            Err(EndPointError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn the_hash_covers_the_whole_certificate() {
        // A long tbs exercises the multi-byte DER length.
        let ecdsa384 = [&ECDSA_SHA2_PREFIX[..], &[3]].concat();
        let cert = cert_with(&ecdsa384, 300);
        assert_eq!(signature_algorithm_oid(&cert).unwrap(), &ecdsa384[..]);
        let data = tls_server_end_point(&cert).unwrap();
        assert_eq!(data, Sha384::digest(&cert).to_vec());
        let cert = cert_with(&rsa(0x05), 10);
        assert_eq!(
            tls_server_end_point(&cert).unwrap(),
            Sha256::digest(&cert).to_vec()
        );
    }

    #[test]
    fn malformed_der_is_an_error_not_a_panic() {
        let good = cert_with(&rsa(0x0b), 20);
        for cut in 0..good.len() {
            assert!(tls_server_end_point(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(tls_server_end_point(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(tls_server_end_point(&[0x31, 0x00]).is_err());
    }
}
