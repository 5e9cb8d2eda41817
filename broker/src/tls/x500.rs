//! A certificate's subject as Java prints it (`X500Principal.getName()`, RFC 2253), which is what
//! Kafka's principal mapping rules match: the last RDN first, `,` between RDNs and `+` inside
//! one, the RFC 2253 keywords (CN, C, L, ST, O, OU, STREET, DC, UID) and, for any other
//! attribute, its dotted OID with the value's DER bytes in hex (`1.2.840.113549.1.9.1=#16…`).
//!
//! Only the subject is read: the certificate was verified by rustls before this runs. The DER
//! walk is a few lines and bounded by the input, so no X.509 crate is needed.

/// The subject of a DER certificate in RFC 2253 form, or `None` if it does not parse.
pub fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let (cert, _) = Der::new(cert).next(0x30)?;
    let (mut tbs, _) = Der::new(cert).next(0x30)?;
    let mut r = Der::new(tbs);
    if r.peek() == Some(0xa0) {
        r.next(0xa0)?; // version
    }
    r.next(0x02)?; // serialNumber
    r.next(0x30)?; // signature
    r.next(0x30)?; // issuer
    r.next(0x30)?; // validity
    let (subject, _) = r.next(0x30)?;
    tbs = subject;
    let mut rdns = Vec::new();
    let mut names = Der::new(tbs);
    while !names.rest.is_empty() {
        let (set, _) = names.next(0x31)?;
        let mut atvs = Der::new(set);
        let mut parts = Vec::new();
        while !atvs.rest.is_empty() {
            let (atv, _) = atvs.next(0x30)?;
            parts.push(attribute(atv)?);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// One `type=value`.
fn attribute(atv: &[u8]) -> Option<String> {
    let mut r = Der::new(atv);
    let (oid, _) = r.next(0x06)?;
    let tag = r.peek()?;
    let (value, whole) = r.next(tag)?;
    let oid = dotted(oid)?;
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, text(tag, value)) {
        (Some(k), Some(s)) => Some(format!("{k}={}", escape(&s))),
        _ => {
            let hex: String = whole.iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("{oid}=#{hex}"))
        }
    }
}

const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// A directory string's text: PrintableString, TeletexString (as Latin-1), IA5String,
/// GeneralString, UTF8String and BMPString, as Java reads them.
fn text(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        0x0c => String::from_utf8(v.to_vec()).ok(),
        0x13 | 0x16 | 0x14 | 0x1b => Some(v.iter().map(|&b| b as char).collect()),
        0x1e => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping as Java applies it: the special characters anywhere, NUL as `\00`, and
/// leading and trailing spaces.
fn escape(s: &str) -> String {
    const SPECIAL: &str = ",=+<>#;\"\\";
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    let leading = out.len() - out.trim_start_matches(' ').len();
    let trailing = out.len() - out.trim_end_matches(' ').len();
    if leading == out.len() {
        return out.replace(' ', "\\ ");
    }
    let core = &out[leading..out.len() - trailing];
    format!("{}{core}{}", "\\ ".repeat(leading), "\\ ".repeat(trailing))
}

/// An OID's dotted form.
fn dotted(oid: &[u8]) -> Option<String> {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = acc.min(80) / 40;
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        } else if i + 1 == oid.len() {
            return None;
        }
    }
    let s: Vec<String> = parts.iter().map(u64::to_string).collect();
    (!s.is_empty()).then(|| s.join("."))
}

/// A DER reader over definite lengths.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Der { rest }
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, which must have `tag`: its contents and its whole encoding.
    fn next(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        let (&t, after) = self.rest.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, mut after) = after.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || after.len() < n {
                return None;
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            after = &after[n..];
            len
        };
        if after.len() < len {
            return None;
        }
        let header = self.rest.len() - after.len();
        let whole = &self.rest[..header + len];
        let contents = &after[..len];
        self.rest = &after[len..];
        Some((contents, whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_java_does() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1=2"), "\\#1\\=2");
        assert_eq!(escape("plain text"), "plain text");
    }

    #[test]
    fn oids_in_dotted_form() {
        assert_eq!(dotted(&[0x55, 0x04, 0x03]).as_deref(), Some("2.5.4.3"));
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(
            dotted(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]).as_deref(),
            Some("0.9.2342.19200300.100.1.25")
        );
        assert_eq!(dotted(&[0x86]), None);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(subject_rfc2253(&[]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x03, 0x30, 0x01]), None);
    }

    #[test]
    fn subject_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Shale, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, "Streams");
        dn.push(rcgen::DnType::CommonName, "client-1");
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("a@b.c".try_into().unwrap()),
        );
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_rfc2253(cert.der()).unwrap(),
            "1.2.840.113549.1.9.1=#16056140622e63,CN=client-1,OU=Streams,O=Shale\\, Inc.,C=DE"
        );
    }
}
