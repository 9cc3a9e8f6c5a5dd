//! Saved-query and audit files: the comment header, and binding `-p` values to it.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use netsql::queries;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = queries::parse("fuzz.sql", text) {
        let overrides: BTreeMap<String, String> = file
            .params
            .iter()
            .map(|(name, default)| (name.clone(), format!("{default}x")))
            .collect();
        let _ = queries::bind(&file, &overrides);
    }
});
