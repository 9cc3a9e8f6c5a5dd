//! netstat's command line, parsed as its getopt_long does: short flags alone or bundled
//! (`-tanp`), `-A FAMILY` (or `-AFAMILY`), long options and their unambiguous prefixes.

/// What the flags ask for, after netstat's own defaulting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub all: bool,
    pub listening: bool,
    pub tcp: bool,
    pub udp: bool,
    pub udplite: bool,
    pub raw: bool,
    pub sctp: bool,
    pub unix: bool,
    pub inet: bool,
    pub inet6: bool,
    pub numeric_hosts: bool,
    pub numeric_ports: bool,
    pub numeric_users: bool,
    pub symbolic: bool,
    pub programs: bool,
    /// How many `-e`: one adds User and Inode.
    pub extend: u8,
    pub timers: bool,
    pub continuous: bool,
    pub wide: bool,
    pub verbose: bool,
    pub route: bool,
    pub interfaces: bool,
    pub statistics: bool,
    pub groups: bool,
    pub fib: bool,
    pub cache: bool,
    pub help: bool,
    /// netstat's `flag_arg`: some protocol or family was named.
    pub named: bool,
    /// The families -4/-6/-x/-A/--inet/--inet6/--unix named, in order (repeats too):
    /// -s reports one, as netstat's `afname`.
    pub families: Vec<&'static str>,
}

/// One of netstat's tables, each computed by its saved query `netstat_<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Inet,
    Unix,
    Groups,
    Interfaces,
    Routes,
    Statistics,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Inet => "inet",
            View::Unix => "unix",
            View::Groups => "groups",
            View::Interfaces => "interfaces",
            View::Routes => "routes",
            View::Statistics => "statistics",
        }
    }
}

/// (long name, short equivalent or a private code, takes an argument)
const LONG: &[(&str, char, bool)] = &[
    ("route", 'r', false),
    ("interfaces", 'i', false),
    ("groups", 'g', false),
    ("statistics", 's', false),
    ("verbose", 'v', false),
    ("wide", 'W', false),
    ("notrim", 'W', false),
    ("numeric", 'n', false),
    ("numeric-hosts", '!', false),
    ("numeric-ports", '@', false),
    ("numeric-users", '#', false),
    ("symbolic", 'N', false),
    ("extend", 'e', false),
    ("programs", 'p', false),
    ("timers", 'o', false),
    ("continuous", 'c', false),
    ("listening", 'l', false),
    ("all", 'a', false),
    ("fib", 'F', false),
    ("cache", 'C', false),
    ("tcp", 't', false),
    ("udp", 'u', false),
    ("udplite", 'U', false),
    ("raw", 'w', false),
    ("sctp", 'S', false),
    ("unix", 'x', false),
    ("inet", '4', false),
    ("inet6", '6', false),
    ("protocol", 'A', true),
    ("help", 'h', false),
];

const SHORT: &str = "acCeFghilnNoprsStuUvWwx46";

impl Flags {
    /// Parses netstat's arguments (without the program name).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.iter().map(AsRef::as_ref);
        while let Some(arg) = args.next() {
            if arg == "--" {
                if let Some(extra) = args.next() {
                    return Err(format!("unexpected argument {extra:?}"));
                }
                break;
            }
            if let Some(long) = arg.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                let (code, takes) = long_option(name)?;
                if takes {
                    let value = match inline {
                        Some(value) => value.to_string(),
                        None => args
                            .next()
                            .ok_or_else(|| format!("option '--{name}' requires an argument"))?
                            .to_string(),
                    };
                    flags.family(&value)?;
                } else if inline.is_some() {
                    return Err(format!("option '--{name}' doesn't allow an argument"));
                } else {
                    flags.apply(code)?;
                }
                continue;
            }
            let Some(bundle) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            for (at, code) in bundle.char_indices() {
                if code == 'A' {
                    let rest = &bundle[at + 1..];
                    let value = if rest.is_empty() {
                        args.next()
                            .ok_or_else(|| "option requires an argument -- 'A'".to_string())?
                    } else {
                        rest
                    };
                    flags.family(value)?;
                    break;
                }
                if !SHORT.contains(code) {
                    return Err(format!("invalid option -- '{code}'"));
                }
                flags.apply(code)?;
            }
        }
        flags.settle()?;
        Ok(flags)
    }

    fn apply(&mut self, code: char) -> Result<(), String> {
        match code {
            'a' => self.all = true,
            'l' => self.listening = true,
            'c' => self.continuous = true,
            'C' => self.cache = true,
            'F' => self.fib = true,
            'e' => self.extend = self.extend.saturating_add(1),
            'g' => self.groups = true,
            'h' => self.help = true,
            'i' => self.interfaces = true,
            'n' => {
                self.numeric_hosts = true;
                self.numeric_ports = true;
                self.numeric_users = true;
            }
            '!' => self.numeric_hosts = true,
            '@' => self.numeric_ports = true,
            '#' => self.numeric_users = true,
            'N' => self.symbolic = true,
            'o' => self.timers = true,
            'p' => self.programs = true,
            'r' => self.route = true,
            's' => self.statistics = true,
            'S' => self.sctp = true,
            't' => self.tcp = true,
            'u' => self.udp = true,
            'U' => self.udplite = true,
            'v' => self.verbose = true,
            'W' => self.wide = true,
            'w' => self.raw = true,
            'x' => {
                self.unix = true;
                self.families.push("unix");
            }
            '4' => self.family("inet")?,
            '6' => self.family("inet6")?,
            other => return Err(format!("invalid option -- '{other}'")),
        }
        Ok(())
    }

    /// `-A` takes a comma-separated list of families.
    fn family(&mut self, list: &str) -> Result<(), String> {
        for family in list.split(',') {
            match family {
                "inet" => {
                    self.inet = true;
                    self.families.push("inet");
                }
                "inet6" => {
                    self.inet6 = true;
                    self.families.push("inet6");
                }
                "unix" => {
                    self.unix = true;
                    self.families.push("unix");
                }
                other => {
                    return Err(format!(
                        "address family {other:?} is not supported (inet, inet6, unix)"
                    ))
                }
            }
        }
        Ok(())
    }

    /// netstat's defaulting after the options are read.
    fn settle(&mut self) -> Result<(), String> {
        let modes = [self.interfaces, self.route, self.statistics]
            .iter()
            .filter(|&&m| m)
            .count();
        if modes > 1 {
            return Err("give at most one of -i, -r, -s".into());
        }
        let any_proto = self.tcp || self.sctp || self.udp || self.udplite || self.raw;
        if (self.inet || self.inet6 || self.statistics) && !any_proto {
            self.tcp = true;
            self.sctp = true;
            self.udp = true;
            self.udplite = true;
            self.raw = true;
        }
        let any_proto = self.tcp || self.sctp || self.udp || self.udplite || self.raw;
        if (any_proto || self.groups) && !(self.inet || self.inet6) {
            self.inet = true;
            self.inet6 = true;
        }
        self.named = any_proto || self.unix || self.groups;
        Ok(())
    }

    /// -s reports one family: two (`-s46`), or unix, would be a partial answer, refused
    /// in netstat's words.
    pub fn check_statistics_family(&self) -> Result<(), String> {
        if matches!(self.families.as_slice(), [] | ["inet"] | ["inet6"]) {
            return Ok(());
        }
        Err(format!(
            "No statistics support for specified address family: {}",
            self.families.join(",")
        ))
    }

    /// Whether -6 (or -A inet6) chose IPv6 for -s and -r.
    pub fn inet6_only(&self) -> bool {
        self.families.last() == Some(&"inet6")
    }

    /// Whether the Internet socket list is printed.
    pub fn lists_inet(&self) -> bool {
        !self.named || self.tcp || self.sctp || self.udp || self.udplite || self.raw
    }

    /// Whether a protocol's rows are read: every protocol when none was named.
    pub fn lists(&self, protocol: bool) -> bool {
        !self.named || protocol
    }

    pub fn lists_unix(&self) -> bool {
        !self.named || self.unix
    }

    /// The views these flags print, in order: one of statistics, routes, interfaces, or
    /// internet sockets, groups and unix sockets as asked.
    pub fn views(&self) -> Vec<View> {
        if self.statistics {
            return vec![View::Statistics];
        }
        if self.route {
            return vec![View::Routes];
        }
        if self.interfaces {
            return vec![View::Interfaces];
        }
        let mut views = Vec::new();
        if self.lists_inet() {
            views.push(View::Inet);
        }
        if self.groups {
            views.push(View::Groups);
        }
        if self.lists_unix() {
            views.push(View::Unix);
        }
        views
    }
}

fn long_option(name: &str) -> Result<(char, bool), String> {
    if let Some(&(_, code, takes)) = LONG.iter().find(|(long, _, _)| *long == name) {
        return Ok((code, takes));
    }
    let matches: Vec<&(&str, char, bool)> = LONG
        .iter()
        .filter(|(long, _, _)| long.starts_with(name))
        .collect();
    match matches.as_slice() {
        [(_, code, takes)] => Ok((*code, *takes)),
        [] => Err(format!("unrecognized option '--{name}'")),
        _ => Err(format!("option '--{name}' is ambiguous")),
    }
}

/// `netsql netstat -h`.
pub const USAGE: &str = "\
usage: netsql netstat [-vWeenNcCF] [<Af>] -r
       netsql netstat [-vWnNcaeol] [<Socket> ...]
       netsql netstat { [-vWeenNac] -i | [-cnNe] -g | -s [-6tuw] }

        -r, --route              display routing table
        -i, --interfaces         display interface table
        -g, --groups             display multicast group memberships
        -s, --statistics         display networking statistics (like SNMP)

        -v, --verbose            be verbose
        -W, --wide               don't truncate IP addresses
        -n, --numeric            don't resolve names
        --numeric-hosts          don't resolve host names
        --numeric-ports          don't resolve port names
        --numeric-users          don't resolve user names
        -N, --symbolic           resolve hardware names
        -e, --extend             display other/more information
        -p, --programs           display PID/Program name for sockets
        -o, --timers             display timers
        -c, --continuous         continuous listing

        -l, --listening          display listening server sockets
        -a, --all                display all sockets (default: connected)
        -F, --fib                display Forwarding Information Base (default)
        -C, --cache              display routing cache instead of FIB

  <Socket>={-t|--tcp} {-u|--udp} {-U|--udplite} {-S|--sctp} {-w|--raw}
           {-x|--unix}
  <AF>=Use '-6|-4' or '-A <af>' or '--<af>'; default: inet
  Address families: inet inet6 unix

Each view is a saved query (netsql --list shows them, netstat_*); netsql netstat
prints its rows in net-tools netstat 2.10's layout.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Flags, String> {
        let args: Vec<&str> = args.split_whitespace().collect();
        Flags::parse(&args)
    }

    #[test]
    fn bundled_and_apart_are_the_same() {
        assert_eq!(parse("-tanp").unwrap(), parse("-t -a -n -p").unwrap());
        assert_eq!(
            parse("--tcp --all --numeric --programs").unwrap(),
            parse("-tanp").unwrap()
        );
        assert_eq!(
            parse("--numeric --prog -t").unwrap(),
            parse("-n -p -t").unwrap()
        );
        assert!(parse("--num").unwrap_err().contains("ambiguous"));
    }

    #[test]
    fn netstats_defaults() {
        let f = parse("-tan").unwrap();
        assert!(
            f.tcp && !f.udp && f.inet && f.inet6 && f.named && f.lists_inet() && !f.lists_unix()
        );
        let f = parse("-an").unwrap();
        assert!(!f.named && f.lists_inet() && f.lists_unix() && f.lists(f.raw));
        let f = parse("-4").unwrap();
        assert!(f.tcp && f.udp && f.raw && f.inet && !f.inet6 && !f.lists_unix());
        let f = parse("-x").unwrap();
        assert!(f.unix && !f.lists_inet());
        let f = parse("-Ainet6").unwrap();
        assert!(f.inet6 && !f.inet && f.tcp);
        assert!(parse("-A inet,unix").unwrap().unix);
        let f = parse("-g").unwrap();
        assert!(f.groups && !f.lists_inet() && !f.lists_unix() && f.inet && f.inet6);
        assert_eq!(parse("-tee").unwrap().extend, 2);
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse("-q").unwrap_err().contains("invalid option -- 'q'"));
        assert!(parse("--bogus").unwrap_err().contains("unrecognized"));
        assert!(parse("--numeric-").unwrap_err().contains("ambiguous"));
        assert!(parse("-A").is_err());
        assert!(parse("-A ipx").is_err());
        assert!(parse("-r -i").is_err());
        assert!(parse("tcp").is_err());
        assert!(parse("--tcp=1").is_err());
        assert!(parse("-").is_err());
        assert!(parse("-s -6").unwrap().inet6_only());
        for both in ["-s46", "-s -6 -4", "-sx", "-s -A inet,inet6", "-s -A unix"] {
            let err = parse(both).unwrap().check_statistics_family().unwrap_err();
            assert!(err.starts_with("No statistics support"), "{both}: {err}");
        }
    }
}
