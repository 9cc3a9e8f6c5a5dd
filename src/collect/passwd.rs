//! `/etc/passwd`: user names for uids (passwd(5)).

use std::collections::HashMap;
use std::io::BufRead;

use super::{open_optional, CollectError, Root};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// Reads `<etc>/passwd`; a missing file is an empty table.
pub fn read(root: &Root) -> Result<Vec<User>, CollectError> {
    let path = root.etc.join("passwd");
    match open_optional(&path)? {
        Some(reader) => parse(reader).map_err(|e| CollectError::io(&path, e)),
        None => Ok(Vec::new()),
    }
}

/// `name:password:uid:gid:gecos:home:shell`. Lines without seven fields or with a
/// non-numeric uid or gid (and NIS `+`/`-` lines) are skipped.
pub fn parse(reader: impl BufRead) -> std::io::Result<Vec<User>> {
    let mut users = Vec::new();
    for line in super::text_lines(reader) {
        let line = line?;
        let line = line.trim_end_matches('\r');
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _password, uid, gid, gecos, home, shell] = fields[..] else {
            continue;
        };
        let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) else {
            continue;
        };
        if name.is_empty() || name.starts_with(['+', '-']) {
            continue;
        }
        users.push(User {
            name: name.to_string(),
            uid,
            gid,
            gecos: gecos.to_string(),
            home: home.to_string(),
            shell: shell.to_string(),
        });
    }
    Ok(users)
}

/// Reads `<etc>/passwd` into uid -> name.
pub fn read_names(root: &Root) -> Result<HashMap<u32, String>, CollectError> {
    Ok(names(&read(root)?))
}

/// uid -> name; the first entry wins when two names share a uid, as getpwuid does.
pub fn names(users: &[User]) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for user in users {
        names.entry(user.uid).or_insert_with(|| user.name.clone());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_and_skips_odd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                    # a comment\n\
                    \n\
                    toor:x:0:0::/root:/bin/sh\n\
                    short:x:5:5\n\
                    bad:x:uid:5:::\n\
                    +nis::::::\n\
                    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\r\n";
        let users = parse(text.as_bytes()).unwrap();
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["root", "daemon", "toor", "nobody"]);
        assert_eq!(users[3].uid, 65534);
        assert_eq!(users[3].shell, "/usr/sbin/nologin");
        assert_eq!(users[1].home, "/usr/sbin");
        assert_eq!(super::names(&users)[&0], "root");
    }
}
