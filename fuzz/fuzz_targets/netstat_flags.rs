//! netstat's command line: NUL-separated arguments, parsed as `netsql netstat` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::netstat::Flags;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split('\0').collect();
    if let Ok(flags) = Flags::parse(&args) {
        let _ = (flags.lists_inet(), flags.lists_unix());
    }
});
