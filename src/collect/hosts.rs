//! `/etc/hosts`: names for addresses, consulted before the resolver (hosts(5)).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use super::{open_optional, CollectError, Root};

/// address -> its first (canonical) name; the first line naming an address wins, as in
/// glibc's files backend.
pub fn read(root: &Root) -> Result<HashMap<IpAddr, String>, CollectError> {
    let path = root.etc.join("hosts");
    match open_optional(&path)? {
        Some(reader) => parse(reader).map_err(|e| CollectError::io(&path, e)),
        None => Ok(HashMap::new()),
    }
}

/// `address canonical_name [aliases...] [# comment]`; lines whose address does not parse
/// are skipped.
pub fn parse(reader: impl BufRead) -> std::io::Result<HashMap<IpAddr, String>> {
    let mut names = HashMap::new();
    for line in super::text_lines(reader) {
        let line = line?;
        let data = line.split('#').next().unwrap_or("");
        let mut fields = data.split_whitespace();
        let (Some(address), Some(name)) = (fields.next(), fields.next()) else {
            continue;
        };
        // A scoped IPv6 address (fe80::1%eth0) names an interface we do not key on.
        let Ok(address) = address.parse::<IpAddr>() else {
            continue;
        };
        names.entry(address).or_insert_with(|| name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_name_of_first_line_wins() {
        let text = "127.0.0.1\tlocalhost\n\
                    127.0.1.1 box.example box # the host\n\
                    ::1     localhost ip6-localhost ip6-loopback\n\
                    127.0.0.1 other\n\
                    # 10.0.0.1 commented\n\
                    bogus name\n\
                    10.0.0.2\n";
        let names = super::parse(text.as_bytes()).unwrap();
        assert_eq!(names.len(), 3);
        assert_eq!(names[&"127.0.0.1".parse().unwrap()], "localhost");
        assert_eq!(names[&"127.0.1.1".parse().unwrap()], "box.example");
        assert_eq!(names[&"::1".parse().unwrap()], "localhost");
    }
}
