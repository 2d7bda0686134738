//! Who a mutual-TLS peer is: its certificate's subject, mapped by rules in
//! the format of Kafka's `ssl.principal.mapping.rules`:
//!
//! ```text
//! RULE:^CN=([^,]+),OU=ops,.*$/$1/L, RULE:^CN=(.*?),.*$/svc-$1/, DEFAULT
//! ```
//!
//! Rules are tried in order against the subject in RFC 2253 form
//! (`CN=alice,OU=ops,O=corp`). A `RULE:pattern/replacement/[LU]` applies
//! when `pattern` matches the whole subject; `$1`… in the replacement are
//! its groups, and `L` / `U` lower- or upper-case the result. `DEFAULT`
//! gives the subject's common name (Kafka's `DEFAULT` gives the whole
//! subject; kmon names users by CN). No rules means `DEFAULT`. A subject no
//! rule matches has no principal and is refused.

use std::fmt;

use regex::Regex;

use crate::error::TlsError;
use crate::x509::CertInfo;

/// The authenticated identity of a connection or request, for ACLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The mapped name (`alice`); shown as `User:alice`.
    pub name: String,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User:{}", self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Pattern { regex: Regex, replacement: String, case: Case },
}

/// The parsed mapping rules.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for PrincipalMapper {
    fn default() -> Self {
        Self { rules: vec![Rule::Default] }
    }
}

/// Reads up to an unescaped `/`; `\/` stands for `/`. Returns the text and the rest after the `/`.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if s[i + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl PrincipalMapper {
    /// Parses rules written as Kafka writes them: comma-separated (a comma
    /// inside a rule's pattern is fine).
    pub fn parse(rules: &str) -> Result<Self, TlsError> {
        let bad = |message: &str| TlsError::BadRule { rule: rules.to_owned(), message: message.to_owned() };
        let mut parsed = Vec::new();
        let mut rest = rules.trim_start();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                parsed.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) = until_slash(r).ok_or_else(|| bad("a RULE needs pattern/replacement/"))?;
                let (replacement, r) = until_slash(r).ok_or_else(|| bad("a RULE needs pattern/replacement/"))?;
                let (case, r) = match r.chars().next() {
                    Some('L') => (Case::Lower, &r[1..]),
                    Some('U') => (Case::Upper, &r[1..]),
                    _ => (Case::Keep, r),
                };
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| bad(&e.to_string()))?;
                parsed.push(Rule::Pattern { regex, replacement, case });
                rest = r;
            } else {
                return Err(bad("expected DEFAULT or RULE:pattern/replacement/[LU]"));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(bad("rules are separated by commas")),
            }
        }
        if parsed.is_empty() {
            parsed.push(Rule::Default);
        }
        Ok(Self { rules: parsed })
    }

    /// The principal of a certificate, or `None` when no rule matches (or
    /// `DEFAULT` meets a subject without a CN).
    pub fn map(&self, cert: &CertInfo) -> Option<Principal> {
        for rule in &self.rules {
            match rule {
                Rule::Default => {
                    if let Some(cn) = &cert.common_name {
                        return Some(Principal { name: cn.clone() });
                    }
                }
                Rule::Pattern { regex, replacement, case } => {
                    if regex.is_match(&cert.subject) {
                        let name = regex.replace(&cert.subject, replacement.as_str()).into_owned();
                        let name = match case {
                            Case::Keep => name,
                            Case::Lower => name.to_lowercase(),
                            Case::Upper => name.to_uppercase(),
                        };
                        return Some(Principal { name });
                    }
                }
            }
        }
        None
    }

    /// The principal of a DER certificate (a peer's leaf).
    pub fn map_der(&self, cert: &[u8]) -> Option<Principal> {
        crate::x509::parse(cert).ok().and_then(|info| self.map(&info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(subject: &str, cn: Option<&str>) -> CertInfo {
        CertInfo { subject: subject.into(), common_name: cn.map(Into::into), not_after: 0 }
    }

    #[test]
    fn default_is_the_common_name() {
        let m = PrincipalMapper::parse("").unwrap();
        assert_eq!(m.map(&cert("CN=alice,O=corp", Some("alice"))).unwrap().to_string(), "User:alice");
        assert_eq!(m.map(&cert("O=corp", None)), None);
    }

    #[test]
    fn rules_apply_in_order_with_case() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=([a-zA-Z.]+),OU=(ops|eng),O=(.*)$/$1@$2/L, RULE:^CN=(.*?),O=x\\/y$/svc-$1/U,DEFAULT",
        )
        .unwrap();
        assert_eq!(m.map(&cert("CN=Alice.B,OU=eng,O=corp", Some("Alice.B"))).unwrap().name, "alice.b@eng");
        assert_eq!(m.map(&cert("CN=bob,O=x/y", Some("bob"))).unwrap().name, "SVC-BOB");
        assert_eq!(m.map(&cert("CN=carol,OU=hr,O=corp", Some("carol"))).unwrap().name, "carol");
    }

    #[test]
    fn no_match_without_default_is_refused() {
        let m = PrincipalMapper::parse("RULE:^CN=(.*),OU=ops$/$1/").unwrap();
        assert_eq!(m.map(&cert("CN=dave,OU=eng", Some("dave"))), None);
        assert_eq!(m.map(&cert("CN=dave,OU=ops", Some("dave"))).unwrap().name, "dave");
    }

    #[test]
    fn bad_rules_are_rejected() {
        for bad in ["RULE:abc", "RULE:(/x/", "NOPE", "DEFAULT DEFAULT"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }
}
