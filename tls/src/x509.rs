//! The few fields of an X.509 certificate kmon reads: the subject (as an
//! RFC 2253 string, like Java's `X500Principal.getName()`, which Kafka's
//! principal mapping rules match against), its common name, and notAfter.
//!
//! DER layout walked here (RFC 5280 §4.1):
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER,
//!     signature SEQUENCE, issuer Name, validity SEQUENCE { notBefore, notAfter },
//!     subject Name, ... }
//! Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value string }
//! ```

/// The fields kmon reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// RFC 2253 order (last RDN first): `CN=alice,OU=eng,O=corp`.
    pub subject: String,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next TLV: (tag, contents).
    fn next(&mut self) -> Result<(u8, &'a [u8]), String> {
        let b = self.0;
        if b.len() < 2 {
            return Err("truncated DER".into());
        }
        let tag = b[0];
        let (len, header) = match b[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81..=0x84 => {
                let k = (b[1] & 0x7f) as usize;
                if b.len() < 2 + k {
                    return Err("truncated DER length".into());
                }
                (b[2..2 + k].iter().fold(0usize, |a, &x| (a << 8) | x as usize), 2 + k)
            }
            _ => return Err("unsupported DER length".into()),
        };
        if b.len() < header + len {
            return Err("truncated DER value".into());
        }
        self.0 = &b[header + len..];
        Ok((tag, &b[header..header + len]))
    }

    fn expect(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let (t, v) = self.next()?;
        if t != tag {
            return Err(format!("expected DER tag {tag:#x}, found {t:#x}"));
        }
        Ok(v)
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

fn attribute_name(oid: &[u8]) -> Option<&'static str> {
    match oid {
        [0x55, 0x04, 0x03] => Some("CN"),
        [0x55, 0x04, 0x06] => Some("C"),
        [0x55, 0x04, 0x07] => Some("L"),
        [0x55, 0x04, 0x08] => Some("ST"),
        [0x55, 0x04, 0x0a] => Some("O"),
        [0x55, 0x04, 0x0b] => Some("OU"),
        _ => None,
    }
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn name(der: &[u8]) -> Result<(String, Option<String>), String> {
    let mut rdns = Der(der);
    let mut parts = Vec::new();
    let mut cn = None;
    while !rdns.0.is_empty() {
        let mut set = Der(rdns.expect(SET)?);
        let mut atvs = Vec::new();
        while !set.0.is_empty() {
            let mut atv = Der(set.expect(SEQUENCE)?);
            let oid = atv.expect(0x06)?;
            let (_, value) = atv.next()?;
            let value = String::from_utf8_lossy(value).into_owned();
            let key = match attribute_name(oid) {
                Some(k) => k.to_owned(),
                None => oid_string(oid),
            };
            if key == "CN" && cn.is_none() {
                cn = Some(value.clone());
            }
            atvs.push(format!("{key}={}", escape(&value)));
        }
        parts.push(atvs.join("+"));
    }
    parts.reverse();
    Ok((parts.join(","), cn))
}

fn oid_string(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    if let Some(&first) = oid.first() {
        arcs.push(u64::from(first / 40));
        arcs.push(u64::from(first % 40));
    }
    let mut acc = 0u64;
    for &b in oid.iter().skip(1) {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

fn digits(s: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()).ok_or_else(|| "bad time digits".to_string())
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn time(tag: u8, v: &[u8]) -> Result<i64, String> {
    let (year, rest) = match tag {
        0x17 if v.len() >= 12 => {
            let yy = digits(&v[0..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &v[2..])
        }
        0x18 if v.len() >= 14 => (digits(&v[0..4])?, &v[4..]),
        _ => return Err(format!("unsupported time (tag {tag:#x})")),
    };
    let f = |i: usize| digits(&rest[i..i + 2]);
    let days = days_from_civil(year, f(0)?, f(2)?);
    Ok(days * 86_400 + f(4)? * 3600 + f(6)? * 60 + f(8)?)
}

/// Reads the subject and notAfter of a DER certificate.
pub fn parse(cert: &[u8]) -> Result<CertInfo, String> {
    let mut outer = Der(cert);
    let mut cert = Der(outer.expect(SEQUENCE)?);
    let mut tbs = Der(cert.expect(SEQUENCE)?);
    let (mut tag, _) = tbs.next()?;
    if tag == 0xa0 {
        (tag, _) = tbs.next()?; // serial
    }
    if tag != 0x02 {
        return Err("expected the serial number".into());
    }
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Der(tbs.expect(SEQUENCE)?);
    validity.next()?; // notBefore
    let (tag, v) = validity.next()?;
    let not_after = time(tag, v)?;
    let (subject, common_name) = name(tbs.expect(SEQUENCE)?)?;
    Ok(CertInfo { subject, common_name, not_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(time(0x17, b"491231235959Z").unwrap(), 2_524_607_999);
        assert_eq!(time(0x18, b"20500101000000Z").unwrap(), 2_524_608_000);
    }

    #[test]
    fn reads_an_rcgen_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "corp");
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice, the admin");
        params.not_after = rcgen::date_time_ymd(2040, 6, 30);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = parse(cert.der()).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("alice, the admin"));
        assert_eq!(info.subject, "CN=alice\\, the admin,O=corp");
        assert_eq!(info.not_after, days_from_civil(2040, 6, 30) * 86_400);
    }
}
