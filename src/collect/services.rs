//! `/etc/services`: service names for ports (services(5)).

use std::io::BufRead;

use super::{open_optional, CollectError, Root};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    pub aliases: Vec<String>,
    pub comment: Option<String>,
}

/// What a parse found: the entries, and how many lines were malformed and skipped.
#[derive(Debug, Default)]
pub struct Services {
    pub entries: Vec<Service>,
    pub skipped: usize,
}

/// Reads `<etc>/services`; a missing file is an empty table.
pub fn read(root: &Root) -> Result<Services, CollectError> {
    let path = root.etc.join("services");
    match open_optional(&path)? {
        Some(reader) => parse(reader).map_err(|e| CollectError::io(&path, e)),
        None => Ok(Services::default()),
    }
}

/// `name port/protocol [alias ...] [# comment]`. Blank and comment-only lines are not
/// entries; a line without a valid `port/protocol` is skipped and counted.
pub fn parse(reader: impl BufRead) -> std::io::Result<Services> {
    let mut services = Services::default();
    for line in super::text_lines(reader) {
        let line = line?;
        let (data, comment) = match line.split_once('#') {
            Some((data, comment)) => (data, Some(comment.trim().to_string())),
            None => (line.as_ref(), None),
        };
        let mut fields = data.split_whitespace();
        let Some(name) = fields.next() else {
            continue;
        };
        let port_proto = fields.next().and_then(|f| f.split_once('/'));
        let Some((port, protocol)) = port_proto else {
            services.skipped += 1;
            continue;
        };
        let (Ok(port), false) = (port.parse::<u16>(), protocol.is_empty()) else {
            services.skipped += 1;
            continue;
        };
        services.entries.push(Service {
            name: name.to_string(),
            port,
            protocol: protocol.to_string(),
            aliases: fields.map(str::to_string).collect(),
            comment: comment.filter(|c| !c.is_empty()),
        });
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_aliases_and_comments() {
        let text: &[u8] = b"# Network services, Internet style\n\
                    \n\
                    tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\n\
                    ssh\t\t22/tcp\n\
                    smtp\t\t25/tcp\t\tmail   \n\
                    http\t\t80/tcp\t\twww www-http\t# WorldWideWeb HTTP\n\
                    \x20  domain  53/udp  \n\
                    broken\t\t99999/tcp\n\
                    noproto\t\t7/\n\
                    lonely\n\
                    word\t\tport/tcp\n\
                    odd\t\t\xc3/tcp\n";
        let services = parse(text).unwrap();
        let names: Vec<&str> = services.entries.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tcpmux", "ssh", "smtp", "http", "domain"]);
        assert_eq!(services.skipped, 5); // broken, noproto, lonely, word, odd
        let http = &services.entries[3];
        assert_eq!((http.port, http.protocol.as_str()), (80, "tcp"));
        assert_eq!(http.aliases, ["www", "www-http"]);
        assert_eq!(http.comment.as_deref(), Some("WorldWideWeb HTTP"));
        assert_eq!(services.entries[2].aliases, ["mail"]);
        assert_eq!(services.entries[1].comment, None);
        assert_eq!(services.entries[4].protocol, "udp");
    }
}
