//! What a certificate says about its holder: the service its SPIFFE URI SAN names, and when it
//! expires. Read with `x509-cert` (a DER parser and the certificate's types, nothing more).

use std::time::SystemTime;

use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::der::oid::AssociatedOid as _;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The SPIFFE ids (URI SANs starting `spiffe://`) of the DER certificate `der`; none when it does
/// not parse or has none.
pub fn spiffe_ids(der: &[u8]) -> Vec<String> {
    let Ok(certificate) = Certificate::from_der(der) else {
        return Vec::new();
    };
    let Some(extensions) = certificate.tbs_certificate.extensions else {
        return Vec::new();
    };
    extensions
        .iter()
        .filter(|extension| extension.extn_id == SubjectAltName::OID)
        .filter_map(|extension| SubjectAltName::from_der(extension.extn_value.as_bytes()).ok())
        .flat_map(|names| names.0)
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        })
        .filter(|uri| uri.starts_with("spiffe://"))
        .collect()
}

/// The Orderly service the DER certificate `der` identifies: the name in its one
/// `spiffe://orderly.local/service/<name>` URI SAN. A certificate with several SPIFFE ids
/// identifies nobody (SPIFFE allows exactly one).
pub fn service(der: &[u8]) -> Option<String> {
    service_among(&spiffe_ids(der)).map(str::to_owned)
}

/// The program outside the suite the DER certificate `der` identifies: the name in its one
/// `spiffe://orderly.local/client/<name>` URI SAN (see [`super::outside_id`]).
pub fn outside(der: &[u8]) -> Option<String> {
    match spiffe_ids(der).as_slice() {
        [one] => super::outside_of(one).map(str::to_owned),
        _ => None,
    }
}

/// The Orderly service a certificate's SPIFFE ids (from [`spiffe_ids`]) name: their only one's.
pub fn service_among(ids: &[String]) -> Option<&str> {
    match ids {
        [one] => super::service_of(one),
        _ => None,
    }
}

/// When the DER certificate `der` stops being valid (its `notAfter`).
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let certificate = Certificate::from_der(der).ok()?;
    Some(
        certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time(),
    )
}
