//! `/etc/protocols` and `/etc/networks`: `name number [aliases] [# comment]` files that
//! netstat consults for raw sockets' "ports" (protocol names) and route destinations
//! (network names).

use std::io::BufRead;

use super::{open_optional, CollectError, Root};

/// Every `(name, number text)` pair of a netdb file, in file order; lines with fewer
/// than two fields are skipped.
pub fn parse(reader: impl BufRead) -> std::io::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for line in super::text_lines(reader) {
        let line = line?;
        let data = line.split('#').next().unwrap_or("");
        let mut fields = data.split_whitespace();
        if let (Some(name), Some(number)) = (fields.next(), fields.next()) {
            pairs.push((name.to_string(), number.to_string()));
        }
    }
    Ok(pairs)
}

fn read(root: &Root, file: &str) -> Result<Vec<(String, String)>, CollectError> {
    let path = root.etc.join(file);
    match open_optional(&path)? {
        Some(reader) => parse(reader).map_err(|e| CollectError::io(&path, e)),
        None => Ok(Vec::new()),
    }
}

/// `/etc/protocols`: (protocol number, name).
pub fn protocols(root: &Root) -> Result<Vec<(u16, String)>, CollectError> {
    Ok(read(root, "protocols")?
        .into_iter()
        .filter_map(|(name, number)| Some((number.parse().ok()?, name)))
        .collect())
}

/// `/etc/networks`: (network number in host order, name). Numbers are dotted with one to
/// four parts, as inet_network(3) reads them: `127` is 0x7f, `127.0.0.0` is 0x7f000000.
pub fn networks(root: &Root) -> Result<Vec<(u32, String)>, CollectError> {
    Ok(read(root, "networks")?
        .into_iter()
        .filter_map(|(name, number)| Some((inet_network(&number)?, name)))
        .collect())
}

fn inet_network(text: &str) -> Option<u32> {
    let parts: Vec<u32> = text
        .split('.')
        .map(|p| p.parse::<u8>().ok().map(u32::from))
        .collect::<Option<_>>()?;
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    Some(parts.iter().fold(0, |acc, p| (acc << 8) | p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_number_lines() {
        let text = "# comment\nip\t0\tIP\t\t# internet protocol\nicmp 1 ICMP\n\nbad\n";
        let pairs = parse(text.as_bytes()).unwrap();
        assert_eq!(
            pairs,
            [("ip".into(), "0".into()), ("icmp".into(), "1".into())]
        );
        assert_eq!(inet_network("127.0.0.0"), Some(0x7f00_0000));
        assert_eq!(inet_network("127"), Some(0x7f));
        assert_eq!(inet_network("10.1"), Some(0x0a01));
        assert_eq!(inet_network("1.2.3.4.5"), None);
        assert_eq!(inet_network("x"), None);
    }
}
