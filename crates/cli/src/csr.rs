//! PKCS#10 certificate signing requests signed by the service's key.

use std::net::IpAddr;
use std::str::FromStr;

use der::asn1::{BitString, Utf8StringRef};
use der::asn1::{Ia5String, ObjectIdentifier as Oid, OctetString, PrintableStringRef, SetOfVec};
use der::{Any, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extension;
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use crate::cli::CreateCsr;
use crate::error::Failure;

/// id-ce-subjectAltName.
const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");

fn encoding(what: &str) -> impl Fn(der::Error) -> Failure + '_ {
    move |e| Failure::generic(format!("cannot encode the {what} of the CSR: {e}"))
}

/// The subject: CN, OU, O, L, ST, C, serialNumber, in that order, one attribute per RDN.
/// Country and serial number are PrintableString when they can be (as X.520 wants), the
/// others UTF8String.
pub(crate) fn subject(args: &CreateCsr) -> Result<RdnSequence, Failure> {
    let entries = [
        ("2.5.4.3", &args.common_name, false),
        ("2.5.4.11", &args.organizational_unit, false),
        ("2.5.4.10", &args.organization, false),
        ("2.5.4.7", &args.locality, false),
        ("2.5.4.8", &args.state, false),
        ("2.5.4.6", &args.country, true),
        ("2.5.4.5", &args.serial_number, true),
    ];
    let mut rdns = Vec::new();
    for (oid, value, printable) in entries {
        let Some(value) = value else { continue };
        let any = match PrintableStringRef::new(value) {
            Ok(p) if printable => Any::encode_from(&p),
            _ => Any::encode_from(&Utf8StringRef::new(value).map_err(encoding("subject"))?),
        }
        .map_err(encoding("subject"))?;
        let atv = AttributeTypeAndValue {
            oid: Oid::new(oid).map_err(|e| Failure::generic(e.to_string()))?,
            value: any,
        };
        let set = SetOfVec::try_from(vec![atv]).map_err(encoding("subject"))?;
        rdns.push(RelativeDistinguishedName(set));
    }
    Ok(RdnSequence(rdns))
}

/// The extension request holding the subject alternative names (none: no attribute).
fn attributes(sans: &[String]) -> Result<SetOfVec<x509_cert::attr::Attribute>, Failure> {
    let mut attributes = SetOfVec::new();
    if sans.is_empty() {
        return Ok(attributes);
    }
    let mut names = Vec::new();
    for san in sans {
        names.push(match IpAddr::from_str(san) {
            Ok(ip) => GeneralName::from(ip),
            Err(_) => GeneralName::DnsName(Ia5String::new(san).map_err(|_| {
                Failure::generic(format!(
                    "the subject alternative name {san:?} is not a DNS name (ASCII only)"
                ))
            })?),
        });
    }
    let san = SubjectAltName(names)
        .to_der()
        .map_err(encoding("subject alternative names"))?;
    let extension = Extension {
        extn_id: SUBJECT_ALT_NAME,
        critical: false,
        extn_value: OctetString::new(san).map_err(encoding("subject alternative names"))?,
    };
    let attribute = x509_cert::attr::Attribute::try_from(ExtensionReq(vec![extension]))
        .map_err(encoding("extension request"))?;
    attributes
        .insert(attribute)
        .map_err(encoding("extension request"))?;
    Ok(attributes)
}

/// The `CertificationRequestInfo` to sign, DER encoded.
pub(crate) fn request_info(args: &CreateCsr, spki: &[u8]) -> Result<CertReqInfo, Failure> {
    use der::Decode as _;
    Ok(CertReqInfo {
        version: Version::V1,
        subject: subject(args)?,
        public_key: SubjectPublicKeyInfoOwned::from_der(spki).map_err(encoding("public key"))?,
        attributes: attributes(&args.san)?,
    })
}

/// The signed request, PEM encoded (`CERTIFICATE REQUEST`, LF line ends).
pub(crate) fn finish(
    info: CertReqInfo,
    algorithm: spki::AlgorithmIdentifierOwned,
    signature: &[u8],
) -> Result<String, Failure> {
    let request = CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(signature).map_err(encoding("signature"))?,
    };
    let der = request.to_der().map_err(encoding("request"))?;
    Ok(crate::encoding::pem("CERTIFICATE REQUEST", &der))
}
